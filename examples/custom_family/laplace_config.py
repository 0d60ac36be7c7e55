"""Laplace collapse from outside the package: fit Laplace(mu, b) by MLE to M points, sample M from the fit, repeat.

The family lives in examples/custom_family/laplace.py and is named by its module path; nothing registers it. Like the
Gaussian's variance (Shumailov et al. 2024, Thm 3.1), the fitted scale b shrinks under `replace` and holds under
`accumulate` (Kazdan et al., "Collapse or Thrive?", 2024).

Launch:  python -m experiments.main --config=examples/custom_family/laplace_config.py --workdir=/tmp/laplace
Runtime: 96 s measured on a busy shared 2-core CPU (2 static groups x 64 chains x 50 generations, plots included).
Check:   python -m collapse_jax.testing --config=examples/custom_family/laplace_config.py
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    # The shared run fields (seeds, chunking, chain block, checkpoints, plots, curation, report) come from common.py.
    config = common.get_config()
    config.seeds = 32
    config.num_generations = 50
    config.regime.name = ("replace", "accumulate")
    config.regime.real_fraction = (0.0, 0.1)
    # Model family: a built-in name or, as here, an importable module path exposing make_model(config, settings).
    config.model.name = "examples.custom_family.laplace"
    # The truth is Laplace(true_location, true_scale).
    config.model.true_location = 0.0
    config.model.true_scale = 1.0
    # lambda: sample Laplace(mu, lambda b) (a sampling bias, as the Gaussian's); a tuple sweeps it inside one compile.
    config.model.sampling_bias = 1.0
    # Size of the real training set at generation 0 (None: M).
    config.model.real_data_size = None
    # B: chains run in fixed blocks of B; an integer fixes a chain's bits across chain counts, devices and shards.
    config.chain_block = 32
    return common.finish(config)
