"""Linear-regression collapse: OLS on fixed inputs relabelled by the previous fit each generation.

Reproduces Gerstgrasser et al. ("Is Model Collapse Inevitable?", 2024, Thm 2; Dohmatob et al. 2024): d = 10, T = 100,
σ = 1; replace error grows linearly, σ²d/(T-d-1)·n, while accumulate stays below π²/6 times the first fit's 0.1124.

Launch:  python -m experiments.main --config=experiments/configs/linear_regression.py --workdir=/tmp/linear_regression
Runtime: about 30 s on a 2-core CPU (2 static groups x 1024 chains x 50 generations; compile and plots dominate).
Override any field: --config.model.dim=20 --config.samples_per_generation=200 --config.seeds=4096
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Number of independent seeds per knob combination (an int n means seeds 0..n-1), or an explicit tuple of seeds.
    config.seeds = 1024
    # Generations after the first fit; results have num_generations + 1 columns (column 0 = fit n = 1 on real data).
    config.num_generations = 50
    # T: labelled points per generation = rows of the chain's fixed input matrix X.
    config.samples_per_generation = 100
    # Root of every chain's random stream (and of its design X): key = fold_in(fold_in(root_seed, seed), generation).
    config.root_seed = 0

    config.regime = ml_collections.ConfigDict()
    # replace | accumulate | accumulate_subsample | fresh; a tuple sweeps it (one compile per value, one results table).
    config.regime.name = ("replace", "accumulate")
    # rho: share of each generation's T points that is real data (a tuple sweeps it inside one compile).
    config.regime.real_fraction = 0.0
    # Keep the raw accumulated pool even when the model has sufficient statistics (slower; for cross-checks).
    config.regime.keep_raw_pool = False

    config.model = ml_collections.ConfigDict()
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

    # K: generations per compiled chunk; the host writes metrics and checkpoints between chunks.
    config.chunk_generations = 25
    # B: chains run in fixed blocks of B (padded); a chain's bits depend on B, not on how many chains run beside it.
    # "auto": the largest block within a per-device memory budget (fast; its bits can change with the chain count);
    # an integer fixes the bits across chain counts, devices and shards.
    config.chain_block = "auto"
    # Save a checkpoint every this many generations (rounded up to a chunk boundary).
    config.checkpoint_every = 25
    # Keep the newest this many checkpoints, plus every keep_period-th generation for later analysis (None: none).
    config.max_checkpoints_to_keep = 2
    config.keep_period = None
    # Figures and report.md after the run.
    config.make_plots = True
    return config
