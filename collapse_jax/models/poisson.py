"""Poisson collapse: refit a Poisson rate by MLE (the sample mean) to M draws, resample M, repeat.

Suresh, Thangaraj & Khandavally (2024), "Rate of model collapse in recursive training": the k-th fit is non-zero with
probability exactly 1 - exp(-M lambda_0 g_k), g_1 = 1, g_{k+1} = 1 - exp(-g_k); rate 0 is absorbing.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from collapse_jax.models._mean_fit import MeanFitFamily, build
from collapse_jax.models._poisson_draws import exact_poisson, log_poisson_pmf
from collapse_jax.models.contract import FamilySettings, Knobs, PyTree
from collapse_jax.models.fields import integer, number


class PoissonModel(MeanFitFamily):
    """Poisson(rate); data are counts [n] (float32, exact integers up to 2^24); params {'rate': scalar}."""

    parameter: ClassVar[str] = "rate"
    knob_fields: ClassVar[dict[str, str]] = {"rate": "model.rate"}
    metric_names: ClassVar[tuple[str, ...]] = ("rate", "survived", "absorbed")
    # config.model fields, declared once: the only source of their defaults and checks.
    config_fields: ClassVar[dict] = {
        "rate": number("lambda_0: the true rate (a per-chain knob)", low=0.0, sweepable=True),
        "real_data_size": integer("real training set at generation 0 (None: M)", low=1, optional=True),
    }

    def draw(self, key: jax.Array, parameter: jax.Array, num_samples: int) -> jax.Array:
        """i.i.d. Poisson(rate) counts, exact at any rate (rate 0 draws 0, so the absorbing state stays)."""
        return exact_poisson(key, jnp.full((num_samples,), parameter, jnp.float32))

    def alive(self, parameter: jax.Array) -> jax.Array:
        """A fitted rate of 0 draws only zeros, so every later fit is 0."""
        return parameter > 0

    def sample_statistics(self, key: jax.Array, params: PyTree, count: jax.Array, knobs: Knobs) -> dict:
        """The (sum, count) of n = count draws without the draws: the sum of n Poisson(rate) is Poisson(n rate)."""
        del knobs
        count = jnp.asarray(count, jnp.float32)
        return {"sum": exact_poisson(key, count * params["rate"]), "count": count}

    def log_likelihood(self, params: PyTree, data: jax.Array, knobs: Knobs) -> jax.Array:
        """log Poisson(x_i; rate) [n]; at rate 0 only x = 0 has mass (log 1 = 0, else -inf)."""
        del knobs
        rate = params["rate"]
        positive = log_poisson_pmf(data, jnp.where(rate > 0, rate, 1.0))
        return jnp.where(rate > 0, positive, jnp.where(data == 0, 0.0, -jnp.inf))


def make_model(config: Any, settings: FamilySettings | None = None) -> PoissonModel:
    """Build the Poisson family from its resolved config (base.make_model: defaults in, fields checked)."""
    del settings
    return build(PoissonModel, config)
