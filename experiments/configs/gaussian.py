"""Gaussian collapse: fit N(mu, Sigma) to M samples, sample M from the fit, repeat (Shumailov et al. 2024, Thm 3.1).

Default sweep reproduces the d = 1, M = 100 comparison of Kazdan et al. ("Collapse or Thrive?", 2024): replace vs
accumulate, MLE, 100 seeds, 100 generations, with real fractions 0 and 0.1 (Shumailov's "10% original data").

Launch:  python -m experiments.main --config=experiments/configs/gaussian.py --workdir=/tmp/gaussian
Runtime: 8.5 s wall on the idle 2-core CPU, plots included (2 static groups, replace and accumulate, each 200 chains:
2 real fractions x 100 seeds; 100 generations; mostly compile time).
Override any field: --config.num_generations=200 --config.regime.name=accumulate --config.seeds=1000
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()  # the shared run fields (seeds, sizes, chunking, checkpoints, curation, report)
    # Kazdan et al.'s comparison: replace vs accumulate, each with 0 and 10% real data.
    config.regime.name = ("replace", "accumulate")
    config.regime.real_fraction = (0.0, 0.1)

    set_model(config)

    # Three checkpoints kept (the shared default keeps two).
    config.max_checkpoints_to_keep = 3
    return common.finish(config)


def set_model(config: ml_collections.ConfigDict, dim: int = 1) -> ml_collections.ConfigDict:
    """The Gaussian family's model block (written once; configs built on other bases call it too)."""
    # Model family: collapse_jax/models/gaussian.py.
    config.model.name = "gaussian"
    # d: data dimension; the truth is N(true_mean * 1, true_std^2 I).
    config.model.dim = dim
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
    return config
