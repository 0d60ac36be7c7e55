"""Bernoulli collapse: refit p by the share of ones in M = 100 draws per generation (two-allele Wright–Fisher).

Reproduces the Bernoulli setting of Suresh, Thangaraj & Khandavally (2024, "Rate of model collapse in recursive
training"): replace, MLE; p = 0 and p = 1 are absorbing. Each outcome survives the k-th fit with probability at least
1 - exp(-M p g_k) >= 1 - exp(-M p / k) (the paper's bound), and both survive with probability at most
M p (1 - p) (1 - 1/M)^(k - 1) (heterozygosity), so collapse takes ~M generations; accumulate never collapses.

Launch:  python -m experiments.main --config=experiments/configs/bernoulli.py --workdir=/tmp/bernoulli
Runtime: 138 s wall with plots on the shared 2-core CPU at load ~17 (2 regimes x 4000 chains x 600 generations).
Result (replace, 1000 chains per p_0): mean collapse fit 9.8 / 39.6 / 99.6 / 138.3 at p_0 = 0.01 / 0.05 / 0.2 / 0.5
         (Kimura's -2M [p ln p + (1 - p) ln(1 - p)]: 11.2 / 39.7 / 100.1 / 138.6); >= 99.3% collapsed by fit 601; no
         observed survival share below the Poisson lower bound by more than 0.85 standard errors, none above the
         heterozygosity bound; accumulate never collapses (every chain keeps its first fit's support).
Collapse fit of chain c: results.event_generation["absorbed"][c] + 1 (exact whatever record_every is).
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    # Chains per probability: 1000 give each survival probability to +-0.016 (one binomial standard error at most).
    config.seeds = 1000
    # Generations after the first fit: 600 = 6 M; by then the heterozygosity bound leaves at most 100 x 0.25 x
    # 0.99^599 = 6e-2 of the p = 0.5 chains polymorphic (measured: 0.7%).
    config.num_generations = 600
    # M = 100 (common.py's default): the draws each generation trains on.

    config.regime.name = ("replace", "accumulate")

    # Model family: a module in collapse_jax/models/.
    config.model.name = "bernoulli"
    # p_0: the true P(x = 1), a per-chain knob (a tuple sweeps it inside one compile): from a rare outcome seen once
    # per generation (M p = 1) to a fair coin.
    config.model.probability = (0.01, 0.05, 0.2, 0.5)
    # Size of the real training set at generation 0 (None: M, the paper's setting).
    config.model.real_data_size = None
    # points: draw the M outcomes; statistics: draw the number of ones, Binomial(M, p), exactly (cost free of M).
    config.model.sampling = "points"

    config.chunk_generations = 100
    config.checkpoint_every = 200
    return common.finish(config)
