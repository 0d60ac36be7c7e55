"""Training-pool regimes: how each generation's batch (real + synthetic points) becomes the next training set.

Every generation's batch has R real slots and M synthetic slots (static shapes); a chain's real fraction rho turns
floor(rho M) real slots and M - floor(rho M) synthetic slots on via 0/1 weights. Regimes differ in what they train on:
replace / fresh: the latest batch; accumulate: every batch so far plus the original real data (Gerstgrasser et al.
2024); accumulate_subsample: M points drawn uniformly from that accumulated pool.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from collapse_jax.models import base

REGIMES = ("replace", "accumulate", "accumulate_subsample", "fresh")


def _concatenate(a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y], axis=0), a, b)


def _take(data: Any, indices: jax.Array) -> Any:
    return jax.tree.map(lambda x: x[indices], data)


@dataclasses.dataclass(frozen=True)
class Regime:
    """Static settings of a regime; the pool state it threads through the generations is a dict of arrays."""

    name: str
    samples_per_generation: int  # M
    real_slots: int  # R = floor(max rho over the sweep * M): zero when no chain uses real data, so no real draws
    capacity: int  # raw-pool capacity: real_data_size + num_generations * (R + M); 0 when not kept
    use_statistics: bool  # accumulate through the model's sufficient statistics (O(1) memory per chain)

    @property
    def needs_real_data_each_generation(self) -> bool:
        """Whether a generation's step draws from the chain's original real training set."""
        return self.real_slots > 0 and self.name != "fresh"

    def real_count(self, knobs: dict) -> jax.Array:
        """floor(rho M): the number of real points in this chain's batch."""
        return jnp.floor(knobs["real_fraction"] * self.samples_per_generation + 1e-6).astype(jnp.int32)

    def batch(self, key: jax.Array, model: Any, real: Any, samples: Any, knobs: dict) -> tuple[Any, jax.Array]:
        """The generation's new points: R real slots then M synthetic slots, with 0/1 weights."""
        num_real = self.real_count(knobs)
        synthetic_weights = jnp.arange(self.samples_per_generation) < self.samples_per_generation - num_real
        if self.real_slots == 0:
            return samples, synthetic_weights.astype(jnp.float32)
        if self.name == "fresh":
            real_points = model.sample_truth(key, self.real_slots, knobs)
        else:
            real_size = jax.tree.leaves(real)[0].shape[0]
            real_points = _take(real, jax.random.choice(key, real_size, (self.real_slots,), replace=False))
        weights = jnp.concatenate([jnp.arange(self.real_slots) < num_real, synthetic_weights])
        return _concatenate(real_points, samples), weights.astype(jnp.float32)

    def start(self, key: jax.Array, model: Any, real: Any, knobs: dict, previous: Any) -> tuple[Any, dict]:
        """Generation 0: fit the original real data; the pool starts as that data."""
        weights = jnp.ones(jax.tree.leaves(real)[0].shape[0], jnp.float32)
        if self.use_statistics:
            statistics = model.statistics(real, weights)
            return model.fit_statistics(key, statistics, knobs, previous), {"statistics": statistics}
        params = model.fit(key, real, weights, knobs, previous)
        if self.capacity == 0:
            return params, {}
        size = weights.shape[0]
        pad = self.capacity - size
        data = jax.tree.map(lambda x: jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)]), real)
        pool = {"data": data, "weights": jnp.concatenate([weights, jnp.zeros(pad)]), "end": jnp.int32(size)}
        return params, pool

    def step(self, key: jax.Array, model: Any, pool: dict, batch: Any, weights: jax.Array, knobs: dict, previous: Any):
        """Generation g >= 1: update the pool with the batch and fit the training set the regime defines."""
        if self.name in ("replace", "fresh"):
            return model.fit(key, batch, weights, knobs, previous), pool
        if self.use_statistics:
            statistics = model.merge_statistics(pool["statistics"], model.statistics(batch, weights))
            return model.fit_statistics(key, statistics, knobs, previous), {"statistics": statistics}
        size = weights.shape[0]
        data = jax.tree.map(
            lambda buf, x: jax.lax.dynamic_update_slice_in_dim(buf, x, pool["end"], 0), pool["data"], batch
        )
        pool_weights = jax.lax.dynamic_update_slice_in_dim(pool["weights"], weights, pool["end"], 0)
        pool = {"data": data, "weights": pool_weights, "end": pool["end"] + size}
        if self.name == "accumulate":
            return model.fit(key, data, pool_weights, knobs, previous), pool
        # accumulate_subsample: M points drawn uniformly (with replacement) from the valid points of the pool.
        draw_key, fit_key = jax.random.split(key)
        # Inverse-CDF draw over the cumulative weights: O(capacity + M log capacity), not O(M x capacity).
        cumulative = jnp.cumsum(pool_weights)
        targets = jax.random.uniform(draw_key, (self.samples_per_generation,)) * cumulative[-1]
        indices = jnp.minimum(jnp.searchsorted(cumulative, targets, side="right"), self.capacity - 1)
        subsample = _take(data, indices)
        ones = jnp.ones(self.samples_per_generation, jnp.float32)
        return model.fit(fit_key, subsample, ones, knobs, previous), pool


def make_regime(config: Any, model: Any, max_real_fraction: float) -> Regime:
    """Build the regime for one static group; `max_real_fraction` is the largest rho in the group's sweep."""
    name = config.regime.name
    if name not in REGIMES:
        raise ValueError(f"config.regime.name: unknown regime {name!r}; allowed: {', '.join(REGIMES)}")
    samples = config.samples_per_generation
    real_slots = int(max_real_fraction * samples + 1e-6)
    if name == "fresh" and not callable(getattr(model, "sample_truth", None)):
        raise ValueError(
            f"config.regime.name: 'fresh' needs a model that can sample its truth; {config.model.name!r} cannot"
        )
    if name != "fresh" and real_slots > model.real_data_size:
        raise ValueError(
            f"config.regime.real_fraction: {max_real_fraction} x M = {real_slots} real points per generation exceeds "
            "the "
            f"real training set ({model.real_data_size}); lower it or raise config.model.real_data_size"
        )
    accumulating = name in ("accumulate", "accumulate_subsample")
    use_statistics = (
        name == "accumulate" and base.has_sufficient_statistics(model) and not config.regime.get("keep_raw_pool", False)
    )
    capacity = 0
    if accumulating and not use_statistics:
        capacity = model.real_data_size + config.num_generations * (real_slots + samples)
    return Regime(name, samples, real_slots, capacity, use_statistics)
