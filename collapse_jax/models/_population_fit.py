"""The rules of a population fit that ignores the pool (GMM, discrete): it fits the previous model's distribution, so
only replace with no real data keeps every generation's fit a function of the last one. Each family lists them."""

from __future__ import annotations

from collapse_jax.models.fields import requires

_MESSAGE = (
    "config.model.population_fit: fits the previous model's distribution and ignores the pool, so it needs "
    "regime.name = replace with real_fraction 0"
)

POOL_FREE_RULES = (
    requires("population_fit", (True,), "/regime.name", ("replace",), _MESSAGE),
    requires("population_fit", (True,), "/regime.real_fraction", (0,), _MESSAGE),
)
