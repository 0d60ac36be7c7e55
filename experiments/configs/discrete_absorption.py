"""Wright–Fisher absorption at M = 10^5, K = 6: how long exact refitting of a categorical takes to keep one outcome.

Paper setting: the discrete collapse of Shumailov et al. (2024, "AI models collapse when trained on recursively
generated data"): replace, MLE refit, uniform truth over K = 6, against the diffusion (Kimura) mean absorption time
E[T] ≈ -2M(K - 1) ln(1 - 1/K) = 182,322 generations at M = 10^5 (SCIENCE.md). Points mode would draw 10^5 outcomes
per chain-generation; model.sampling = "statistics" draws the 6 counts (a multinomial) directly.

Launch:  python -m experiments.main --config=experiments/configs/discrete_absorption.py --workdir=/tmp/absorption
Runtime: 64 chains x 600,000 generations took 1249 s on the shared 2-core CPU (load ~6; ~3.1e4 chain-generations/s),
         so the 256 chains below take ~85 min there. Absorption time of chain c:
         results.event_generation["absorbed"][c] + 1 (column g holds fit g + 1; exact whatever record_every is).
Result (64 chains, seeds 0-63): all absorbed by 600,000; mean T = 168,537 (sd 78,580, standard error 9,822,
         median 148,787) vs the formula's 182,322: 1.4 standard errors low. Fixed outcomes 9/11/10/7/14/13 (10.7 each
         expected under P(i fixes) = p0(i)).
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    # Number of independent seeds (an int n means seeds 0..n-1): 256 chains give the mean absorption time to ~3%
    # (measured sd(T) = 0.47 E[T] over 64 chains, so one standard error is 0.47 / 16 of the mean).
    config.seeds = 256
    # Generations after the first fit. 600,000 = 3.3 E[T] = 6 M: the last two outcomes of a chain are lost at rate
    # ~1/M per generation, so a chain still polymorphic then is rare (the measured run below counts them).
    config.num_generations = 600_000
    # M: draws each generation trains on (and synthetic draws each fit produces).
    config.samples_per_generation = 100_000

    # Model family: a module in collapse_jax/models/.
    config.model.name = "discrete"
    # K: number of outcomes.
    config.model.num_outcomes = 6
    # beta: truth p0(i) ∝ i^-beta; 0 is uniform, the starting point of the E[T] formula.
    config.model.zipf_exponent = 0.0
    # alpha: add-alpha smoothing; 0 is the MLE, the pure Wright–Fisher chain (smoothing would forbid absorption).
    config.model.smoothing = 0.0
    # Size of the real training set at generation 0 (None: M).
    config.model.real_data_size = None
    # "statistics": draw each generation's multinomial counts (log2 K conditional binomials) instead of M outcomes.
    config.model.sampling = "statistics"

    config.chunk_generations = 10_000
    # B: chains run in fixed blocks of B; an integer fixes a chain's bits across chain counts, devices and shards.
    config.chain_block = 256
    config.checkpoint_every = 50_000
    # Keep every k-th generation's metrics on disk (0 and the last always); the absorption generation stays exact
    # (`absorbed` is an event metric). 1000: 601 columns, not 600,001 (0.6 GB of float32 per metric at 256 chains).
    config.record_every = 1000
    return common.finish(config)
