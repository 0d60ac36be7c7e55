"""Five families that would silently give wrong science: the Gaussian (examples/gaussian_wrapper) with one fault each.

The conformance kit must fail each with its own one-line message (tests/test_testing.py); a module of its own so that
the kit's fresh-process check imports it without the test module's fixtures.
"""

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.host import runner
from collapse_jax.models import base
from examples.gaussian_wrapper.family import GaussianWrapper
from experiments.configs import gaussian

# Set once per import from unseeded entropy: a fresh process (a resumed job, another shard) gets another value. Small,
# so only bits move (the statistical checks still pass): what the fresh-process check alone must catch.
_IMPORT_NOISE = float(np.random.default_rng().uniform(1e-3, 2e-3))


class MaskWeights(GaussianWrapper):
    """Reads weights as a 0/1 mask: regime.real_weight and detected_weight = 0.25 would be silently ignored."""

    def fit(self, key, data, weights, knobs, previous):
        return super().fit(key, data, (weights > 0).astype(jnp.float32), knobs, previous)


class FixedRealData(GaussianWrapper):
    """Ignores its key in real_data: every chain trains on the same real set."""

    def real_data(self, key, knobs):
        return super().real_data(jax.random.key(0), knobs)


class ImportTimeNoise(GaussianWrapper):
    """Moves its real data by a value drawn at import time: not reproducible across processes, so resume breaks."""

    def real_data(self, key, knobs):
        return super().real_data(key, knobs) + _IMPORT_NOISE


class SampleIgnoresParams(GaussianWrapper):
    """Samples the truth whatever it was fitted to: no collapse can ever show."""

    def sample(self, key, params, num_samples, knobs):
        return self.sample_truth(key, num_samples, knobs)


class FitIgnoresData(GaussianWrapper):
    """Fits fresh truth points instead of its pool: every generation is a generation 0."""

    def fit(self, key, data, weights, knobs, previous):
        return super().fit(key, self.sample_truth(key, data.shape[0], knobs), weights, knobs, previous)


BROKEN = (MaskWeights, FixedRealData, ImportTimeNoise, SampleIgnoresParams, FitIgnoresData)


def build(family: type, real_data_size: int = 64):
    """`family` around the built-in Gaussian (d = 1, N(0, 1) truth, MLE) with `real_data_size` real points."""
    overrides = {"model.dim": 1, "model.real_data_size": real_data_size, "model.test_size": 200, "seeds": 1}
    return family(base.make_model(runner.as_config(overrides, gaussian.get_config())))
