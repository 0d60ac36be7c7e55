"""Bernoulli collapse: refit p by MLE (the share of ones) to M draws, resample M, repeat (two-allele Wright–Fisher).

Suresh, Thangaraj & Khandavally (2024), "Rate of model collapse in recursive training": p = 0 and p = 1 are absorbing;
the survival of each outcome is bounded by the Poisson law 1 - exp(-M p_0 g_k) (tests/test_mean_fit_families.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from collapse_jax.models._mean_fit import MeanFitFamily, build
from collapse_jax.models._multinomial import exact_binomial
from collapse_jax.models.contract import FamilySettings, Knobs, PyTree
from collapse_jax.models.fields import integer, number


class BernoulliModel(MeanFitFamily):
    """Bernoulli(probability); data are 0/1 floats [n]; params {'probability': scalar}."""

    parameter: ClassVar[str] = "probability"
    knob_fields: ClassVar[dict[str, str]] = {"probability": "model.probability"}
    metric_names: ClassVar[tuple[str, ...]] = ("probability", "survived", "absorbed")
    # config.model fields, declared once: the only source of their defaults and checks.
    config_fields: ClassVar[dict] = {
        "probability": number("p_0: the true P(x = 1) (a per-chain knob)", low=0.0, high=1.0, sweepable=True),
        "real_data_size": integer("real training set at generation 0 (None: M)", low=1, optional=True),
    }

    def draw(self, key: jax.Array, parameter: jax.Array, num_samples: int) -> jax.Array:
        """i.i.d. 0/1 draws, 1 with probability p (u < p with u in [0, 1): p = 0 never gives 1, p = 1 always does)."""
        return (jax.random.uniform(key, (num_samples,), jnp.float32) < parameter).astype(jnp.float32)

    def alive(self, parameter: jax.Array) -> jax.Array:
        """Collapse is a point mass: at p = 0 or 1 every draw is the same outcome, so every later fit stays there."""
        return (parameter > 0) & (parameter < 1)

    def sample_statistics(self, key: jax.Array, params: PyTree, count: jax.Array, knobs: Knobs) -> dict:
        """The (sum, count) of n = count draws without the draws: the number of ones is Binomial(n, p), exactly."""
        del knobs
        count = jnp.asarray(count, jnp.float32)
        return {"sum": exact_binomial(key, count, params["probability"]), "count": count}

    def log_likelihood(self, params: PyTree, data: jax.Array, knobs: Knobs) -> jax.Array:
        """log p^x (1 - p)^(1 - x) [n] (-inf for an outcome the fit has lost)."""
        del knobs
        probability = params["probability"]
        xlogy = jax.scipy.special.xlogy
        return xlogy(data, probability) + xlogy(1.0 - data, 1.0 - probability)


def make_model(config: Any, settings: FamilySettings | None = None) -> BernoulliModel:
    """Build the Bernoulli family from its resolved config (base.make_model: defaults in, fields checked)."""
    del settings
    return build(BernoulliModel, config)
