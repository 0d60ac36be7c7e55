"""Laplace collapse from outside the package: fit Laplace(mu, b) by MLE to M points, sample M from the fit, repeat.

The family lives in examples/custom_family/laplace.py and is named by its module path; nothing registers it. Like the
Gaussian's variance (Shumailov et al. 2024, Thm 3.1), the fitted scale b shrinks under `replace` and holds under
`accumulate` (Kazdan et al., "Collapse or Thrive?", 2024).

Launch:  python -m experiments.main --config=examples/custom_family/laplace_config.py --workdir=/tmp/laplace
Runtime: 96 s measured on a busy shared 2-core CPU (2 static groups x 64 chains x 50 generations, plots included).
Check:   python -m collapse_jax.testing --config=examples/custom_family/laplace_config.py
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Number of independent seeds per knob combination (an int n means seeds 0..n-1), or an explicit tuple of seeds.
    config.seeds = 32
    # Generations after the first fit; results have num_generations + 1 columns (column 0 = fit on real data).
    config.num_generations = 50
    # M: points each generation trains on (and synthetic points each model draws).
    config.samples_per_generation = 100
    # Root of every chain's random stream: key = fold_in(fold_in(root_seed, seed), generation).
    config.root_seed = 0

    config.regime = ml_collections.ConfigDict()
    # replace | accumulate | accumulate_subsample | fresh; a tuple sweeps it (one compile per value, one results table).
    config.regime.name = ("replace", "accumulate")
    # rho: share of each generation's M points that is real data (a tuple sweeps it inside one compile).
    config.regime.real_fraction = (0.0, 0.1)

    config.model = ml_collections.ConfigDict()
    # Model family: a built-in name or, as here, an importable module path exposing make_model(config, settings).
    config.model.name = "examples.custom_family.laplace"
    # The truth is Laplace(true_location, true_scale).
    config.model.true_location = 0.0
    config.model.true_scale = 1.0
    # lambda: sample Laplace(mu, lambda b) (a sampling bias, as the Gaussian's); a tuple sweeps it inside one compile.
    config.model.sampling_bias = 1.0
    # Size of the real training set at generation 0 (None: M).
    config.model.real_data_size = None

    # K: generations per compiled chunk; the host writes metrics and checkpoints between chunks.
    config.chunk_generations = 10
    # B: chains run in fixed blocks of B; an integer fixes a chain's bits across chain counts, devices and shards.
    config.chain_block = 32
    # Keep every k-th generation's metrics on disk (0 and the last always).
    config.record_every = 1
    # Save a checkpoint every this many generations (rounded up to a chunk boundary).
    config.checkpoint_every = 10
    # Keep the newest this many checkpoints, plus every keep_period-th generation for later analysis (None: none).
    config.max_checkpoints_to_keep = 3
    config.keep_period = None
    # Figures and report.md after the run.
    config.make_plots = True
    # TensorBoard summaries into <workdir>/tensorboard after every chunk (needs tensorboardX).
    config.tensorboard = False
    return config
