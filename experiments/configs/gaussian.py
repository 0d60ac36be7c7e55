"""Gaussian collapse: fit N(mu, Sigma) to M samples, sample M from the fit, repeat (Shumailov et al. 2024, Thm 3.1).

Default sweep reproduces the d = 1, M = 100 comparison of Kazdan et al. ("Collapse or Thrive?", 2024): replace vs
accumulate, MLE, 100 seeds, 100 generations, with real fractions 0 and 0.1 (Shumailov's "10% original data").

Launch:  python -m experiments.main --config=experiments/configs/gaussian.py --workdir=/tmp/gaussian
Runtime: about 20 s on a 2-core CPU (4 static groups x 200 chains x 100 generations; mostly compile time).
Override any field: --config.num_generations=200 --config.regime.name=accumulate --config.seeds=1000
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Number of independent seeds per knob combination (an int n means seeds 0..n-1), or an explicit tuple of seeds.
    config.seeds = 100
    # Generations after the first fit; results have num_generations + 1 columns (column 0 = fit on real data).
    config.num_generations = 100
    # M: points each generation trains on (and synthetic points each model draws).
    config.samples_per_generation = 100
    # Root of every chain's random stream: key = fold_in(fold_in(root_seed, seed), generation).
    config.root_seed = 0

    config.regime = ml_collections.ConfigDict()
    # replace | accumulate | accumulate_subsample | fresh; a tuple sweeps it (one compile per value, one results table).
    config.regime.name = ("replace", "accumulate")
    # rho: share of each generation's M points that is real data (a tuple sweeps it inside one compile).
    config.regime.real_fraction = (0.0, 0.1)
    # Keep the raw accumulated pool even when the model has sufficient statistics (slower; for cross-checks).
    config.regime.keep_raw_pool = False

    config.model = ml_collections.ConfigDict()
    # Model family: a module in collapse_jax/models/.
    config.model.name = "gaussian"
    # d: data dimension; the truth is N(true_mean * 1, true_std^2 I).
    config.model.dim = 1
    config.model.true_mean = 0.0
    config.model.true_std = 1.0
    # mle (ddof 0, collapses in expectation) or unbiased (ddof 1, a martingale that still collapses a.s.).
    config.model.estimator = "mle"
    # lambda: sample from N(mu, lambda * Sigma) (Alemohammad et al. "MAD"); a tuple sweeps it inside one compile.
    config.model.sampling_bias = 1.0
    # Size of the real training set at generation 0 (None: M).
    config.model.real_data_size = None
    # Held-out real points for nll_real_test (shared by all chains).
    config.model.test_size = 10_000

    # K: generations per compiled chunk; the host writes metrics and checkpoints between chunks.
    config.chunk_generations = 10
    # B: chains run in fixed blocks of B (padded); a chain's bits depend on B, not on how many chains run beside it.
    # "auto": the largest block within a per-device memory budget (fast; its bits can change with the chain count);
    # an integer fixes the bits across chain counts, devices and shards.
    config.chain_block = "auto"
    # Keep every k-th generation's metrics on disk (0 and the last always); event generations stay exact.
    config.record_every = 1
    # Save a checkpoint every this many generations (rounded up to a chunk boundary).
    config.checkpoint_every = 10
    # Keep the newest this many checkpoints, plus every keep_period-th generation for later analysis (None: none).
    config.max_checkpoints_to_keep = 3
    config.keep_period = None
    # Figures and report.md after the run.
    config.make_plots = True
    # TensorBoard summaries into <workdir>/tensorboard after every chunk (needs tensorboardX; may change on a resume).
    config.tensorboard = False
    return config
