"""Poisson collapse: refit a Poisson rate by its sample mean to M = 100 draws per generation, 1000 chains per rate.

Reproduces the Poisson setting of Suresh, Thangaraj & Khandavally (2024, "Rate of model collapse in recursive
training"): replace, MLE, the k-th fit is non-zero with probability exactly 1 - exp(-M lambda_0 g_k) (g_1 = 1,
g_{k+1} = 1 - exp(-g_k), g_k ~ 2/k), so a rate seen M lambda_0 times in the real data is forgotten after ~M lambda_0
generations; accumulate (all real data kept) never forgets.

Launch:  python -m experiments.main --config=experiments/configs/poisson.py --workdir=/tmp/poisson
Runtime: 1005 s wall with plots on the shared 2-core CPU at load ~15-20 (beside a test run; 2 regimes x 3000 chains x
         200 generations of M = 100 exact Poisson points: compile plus ~1 s per generation there).
Result (replace, 1000 chains per lambda_0): survival at fits 1 / 10 / 100 / 201 = 0.639 / 0.163 / 0.021 / 0.011 at
         lambda_0 = 0.01 (law 0.632 / 0.158 / 0.019 / 0.010), 0.995 / 0.567 / 0.104 / 0.052 at 0.05 (0.993 / 0.577 /
         0.093 / 0.048), 1.000 / 0.964 / 0.334 / 0.203 at 0.2 (1.000 / 0.968 / 0.324 / 0.178); the largest deviation
         over the 3 x 201 fits is 2.3 binomial standard errors. Accumulate keeps every chain's first-fit survival.
Survival of chain c at fit k: results.metrics["survived"][c, k - 1]; its extinction fit:
         results.event_generation["absorbed"][c] + 1 (exact whatever record_every is).
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    # Chains per rate: 1000 give each survival probability to +-0.016 (one binomial standard error at most).
    config.seeds = 1000
    # Generations after the first fit: at M lambda_0 = 20 the survival probability is still 1 - exp(-40 g_k) = 0.33
    # at k = 100 and 0.18 at k = 200, so the run shows the slow 2 M lambda_0 / k tail of the law.
    config.num_generations = 200
    # M = 100 (common.py's default): the draws each generation trains on.

    config.regime.name = ("replace", "accumulate")

    # Model family: a module in collapse_jax/models/.
    config.model.name = "poisson"
    # lambda_0: the true rate, a per-chain knob (a tuple sweeps it inside one compile): M lambda_0 = 1, 5 and 20
    # expected occurrences per generation.
    config.model.rate = (0.01, 0.05, 0.2)
    # Size of the real training set at generation 0 (None: M, the paper's setting).
    config.model.real_data_size = None
    # points: draw the M counts; statistics: draw their sum, Poisson(M rate), exactly (same law, cost free of M).
    config.model.sampling = "points"

    config.chunk_generations = 50
    config.checkpoint_every = 100
    return common.finish(config)
