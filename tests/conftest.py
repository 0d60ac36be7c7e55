"""Shared fixtures: small, fast configs built from the shipped experiment configs; the suite's compile setting."""

import compile_setting

compile_setting.apply()  # before anything starts jax's backend: XLA_FLAGS is read once, at its start

import ml_collections  # noqa: E402
import pytest  # noqa: E402

from collapse_jax.host import runner  # noqa: E402
from experiments.configs import gaussian  # noqa: E402


@pytest.fixture
def gaussian_config() -> ml_collections.ConfigDict:
    """The shipped Gaussian config shrunk to a single static group and a few chains (seconds to run)."""
    overrides = {
        "regime.name": "replace",
        "regime.real_fraction": 0.0,
        "seeds": 8,
        "num_generations": 6,
        "chunk_generations": 3,
        "chain_block": 8,
        "checkpoint_every": 1,
        "make_plots": False,
        "model.test_size": 1000,
    }
    return runner.as_config(overrides, gaussian.get_config())
