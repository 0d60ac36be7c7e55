"""Discrete collapse: refit a categorical over K = 6 outcomes to M = 1000 draws per generation (Wright–Fisher chain).

Reproduces the K = 6, M = 1000 categorical setting of Kazdan, Schaeffer et al. ("Collapse or Thrive?", 2024): replace
collapses to one outcome after E[T] ≈ -2M(K-1) ln(1-1/K) ≈ 1823 generations (Shumailov et al.); accumulate does not.

Launch:  python -m experiments.main --config=experiments/configs/discrete.py --workdir=/tmp/discrete
Runtime: about 50 s on a 2-core CPU (2 static groups x 128 chains x 6000 generations of M = 1000 draws).
Override any field: --config.model.num_outcomes=10 --config.samples_per_generation=100 --config.seeds=1000
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Number of independent seeds per knob combination (an int n means seeds 0..n-1), or an explicit tuple of seeds.
    config.seeds = 128
    # Generations after the first fit; results have num_generations + 1 columns (column 0 = fit on real data).
    # 6000 ≈ 3.3 E[T]: the chance a K = 6, M = 1000 chain is still polymorphic then is below 1%.
    config.num_generations = 6000
    # M: draws each generation trains on (and synthetic draws each fit produces).
    config.samples_per_generation = 1000
    # Root of every chain's random stream: key = fold_in(fold_in(root_seed, seed), generation).
    config.root_seed = 0

    config.regime = ml_collections.ConfigDict()
    # replace | accumulate | accumulate_subsample | fresh; a tuple sweeps it (one compile per value, one results table).
    config.regime.name = ("replace", "accumulate")
    # rho: share of each generation's M points that is real data (a tuple sweeps it inside one compile).
    config.regime.real_fraction = 0.0
    # Keep the raw accumulated pool even when the model has sufficient statistics (slower; for cross-checks).
    config.regime.keep_raw_pool = False

    config.model = ml_collections.ConfigDict()
    # Model family: a module in collapse_jax/models/.
    config.model.name = "discrete"
    # K: number of outcomes (a tuple compiles one group per value).
    config.model.num_outcomes = 6
    # beta: truth p0(i) ∝ i^-beta over ranks i = 1..K; 0 is uniform (a tuple sweeps it inside one compile).
    config.model.zipf_exponent = 0.0
    # alpha: add-alpha smoothing of the fitted frequencies; 0 is the MLE, the pure Wright–Fisher chain (a knob).
    config.model.smoothing = 0.0
    # Size of the real training set at generation 0 (None: M).
    config.model.real_data_size = None

    # K: generations per compiled chunk; the host writes metrics and checkpoints between chunks.
    config.chunk_generations = 500
    # B: chains run in fixed blocks of B (padded); a chain's bits depend on B, not on how many chains run beside it.
    # "auto": the largest block within a per-device memory budget (fast; its bits can change with the chain count);
    # an integer fixes the bits across chain counts, devices and shards.
    config.chain_block = "auto"
    # Keep every k-th generation's metrics on disk (0 and the last always); event generations stay exact.
    config.record_every = 1
    # Save a checkpoint every this many generations (rounded up to a chunk boundary).
    config.checkpoint_every = 1000
    # Keep the newest this many checkpoints, plus every keep_period-th generation for later analysis (None: none).
    config.max_checkpoints_to_keep = 2
    config.keep_period = None
    # Figures and report.md after the run.
    config.make_plots = True
    return config
