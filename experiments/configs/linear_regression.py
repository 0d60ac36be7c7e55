"""Linear-regression collapse: OLS on fixed inputs relabelled by the previous fit each generation.

Reproduces Gerstgrasser et al. ("Is Model Collapse Inevitable?", 2024, Thm 2; Dohmatob et al. 2024): d = 10, T = 100,
σ = 1; replace error grows linearly, σ²d/(T-d-1)·n, while accumulate stays below π²/6 times the first fit's 0.1124.

Launch:  python -m experiments.main --config=experiments/configs/linear_regression.py --workdir=/tmp/linear_regression
Runtime: about 30 s on a 2-core CPU (2 static groups x 1024 chains x 50 generations; compile and plots dominate).
Override any field: --config.model.dim=20 --config.samples_per_generation=200 --config.seeds=4096
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.seeds = 1024
    # Generations after the first fit; results have num_generations + 1 columns (column 0 = fit n = 1 on real data).
    config.num_generations = 50

    config.regime.name = ("replace", "accumulate")

    # Model family: a module in collapse_jax/models/.
    config.model.name = "linear_regression"
    # d: input dimension; x ~ N(0, I_d), w* = 1/√d (a tuple compiles one group per value).
    config.model.dim = 10
    # σ: label noise std, y = x·w + σε in every generation (a tuple sweeps it inside one compile).
    config.model.noise_std = 1.0
    # λ: ridge penalty, ŵ = (XᵀX + λI)⁻¹Xᵀy on the training pool; 0 is OLS (a tuple sweeps it inside one compile).
    config.model.ridge = 0.0
    # Held-out inputs for test_mse_empirical (noise-free labels x·w*), shared by all chains.
    config.model.test_size = 10_000
    # Seed of the held-out inputs (kept apart from every chain's stream).
    config.model.test_seed = 2**31 - 1

    config.chunk_generations = 25
    config.checkpoint_every = 25
    return common.finish(config)
