"""Training-pool regimes: how each generation's batch (real + synthetic points) becomes the next training set.

Every generation's batch has R real slots and M synthetic slots (static shapes); a chain's real fraction rho turns
floor(rho M) real slots and M - floor(rho M) synthetic slots on via 0/1 weights. Regimes differ in what they train on:
replace / fresh: the latest batch; accumulate: every batch so far plus the original real data (Gerstgrasser et al.
2024); accumulate_subsample: M points drawn uniformly from that accumulated pool.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from collapse_jax.core import streams, supply
from collapse_jax.models import base, contract


def _concatenate(a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y], axis=0), a, b)


def _take(data: Any, indices: jax.Array) -> Any:
    return jax.tree.map(lambda x: x[indices], data)


def assemble(real_part: tuple | None, samples: Any, synthetic_weights: jax.Array) -> tuple[Any, jax.Array]:
    """Concatenate the real part (points, weights, _) and the synthetic candidates into one weighted batch."""
    if real_part is None:
        return samples, synthetic_weights
    points, weights, _ = real_part
    return _concatenate(points, samples), jnp.concatenate([weights, synthetic_weights])


def _fit_training_set(regime: Regime, key: jax.Array, model: Any, data: Any, weights: jax.Array, knobs, previous):
    """Train on the whole training set (the latest batch, or the accumulated pool)."""
    return model.fit(key, data, weights, knobs, previous)


def _fit_subsample(regime: Regime, key: jax.Array, model: Any, data: Any, weights: jax.Array, knobs, previous):
    """Train on M points drawn uniformly (with replacement) from the valid points of the accumulated pool."""
    draw_key, fit_key = jax.random.split(key)
    # Inverse-CDF draw over the cumulative weights: O(capacity + M log capacity), not O(M x capacity).
    cumulative = jnp.cumsum(weights)
    targets = jax.random.uniform(draw_key, (regime.samples_per_generation,)) * cumulative[-1]
    indices = jnp.minimum(jnp.searchsorted(cumulative, targets, side="right"), regime.capacity - 1)
    subsample = _take(data, indices)
    ones = jnp.ones(regime.samples_per_generation, jnp.float32)
    return model.fit(fit_key, subsample, ones, knobs, previous)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RegimeKind:
    """What one regime name means: the per-name pieces the Regime methods and make_regime read."""

    # Every batch so far (and the original real data) stays in the pool: the training set grows each generation.
    accumulates: bool = False
    # The accumulated pool may be kept as the model's sufficient statistics (O(1) memory) when the model has them and
    # config.regime.keep_raw_pool is off; the training set must then be the whole pool, never a draw from its points.
    statistics_pool: bool = False
    # The batch's real slots are fresh draws from the truth (models with sample_truth), not the chain's real set.
    real_from_truth: bool = False
    # (regime, key, model, training data, weights, knobs, previous) -> params: the fit of the training set (the batch,
    # or the pool when accumulating).
    fit: Callable[..., Any] = _fit_training_set


# The regimes, by config.regime.name. Adding one = one entry here (plus its tests): config validation, the sweep's
# choices and make_regime all read this table. A new way to train on the pool is a new `fit` function; new static
# pieces (a different pool layout) become a new RegimeKind field with a default that keeps the others unchanged.
# (A family that sizes buffers by the training set, kde.py's centres, reads regime names itself: it cannot import
# the core; a new accumulating regime checks it.)
REGIME_KINDS: dict[str, RegimeKind] = {
    "replace": RegimeKind(),
    "accumulate": RegimeKind(accumulates=True, statistics_pool=True),
    "accumulate_subsample": RegimeKind(accumulates=True, fit=_fit_subsample),
    "fresh": RegimeKind(real_from_truth=True),
}
REGIMES = tuple(REGIME_KINDS)


def keeps_statistics_pool(name: str, model: Any, keep_raw_pool: bool) -> bool:
    """Whether regime `name` accumulates through the model's sufficient statistics instead of a raw pool of points."""
    kind = REGIME_KINDS[name]
    return kind.statistics_pool and base.supports(model, base.SufficientStatistics) and not keep_raw_pool


def keeps_raw_pool(name: str, model: Any, keep_raw_pool: bool) -> bool:
    """Whether regime `name` keeps every accumulated point (a buffer of capacity real_data_size + N x batch)."""
    return REGIME_KINDS[name].accumulates and not keeps_statistics_pool(name, model, keep_raw_pool)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Regime:
    """Static settings of a regime; the pool state it threads through the generations is a dict of arrays.

    A generation's batch is laid out as [preserved P | real R | inflow I | synthetic candidates M x oversample], all
    static; per-chain 0/1 weights switch slots on. Real-data supply (schedules, inflow, the preserved reserve) is in
    supply.py; curation (which synthetic candidates survive) in curation.py.
    """

    name: str
    samples_per_generation: int  # M
    real_slots: int  # R = floor(max rho over the sweep and the schedule * M): zero when no chain uses real data
    capacity: int  # raw-pool capacity: real_data_size + num_generations * batch size; 0 when not kept
    use_statistics: bool  # accumulate through the model's sufficient statistics (O(1) memory per chain)
    schedule: str = "constant"  # real_fraction schedule (supply.SCHEDULES)
    inflow_slots: int = 0  # I = the sweep's largest real_inflow: new real points added on top of the M
    preserved_slots: int = 0  # P = floor(max preserved_fraction * real_data_size); 0 under accumulate (already kept)
    oversample: int = 1  # synthetic candidates per slot: the curation keeps the first survivors up to M - R_g
    inflow_from_truth: bool = False  # the inflow is fresh truth draws (models with sample_truth), else real-set points
    # config.model.sampling == "statistics": the synthetic part is drawn as sufficient statistics, never as points.
    synthetic_statistics: bool = False
    # config.regime.real_weight is set: the batch's real points carry the chain's knob w of its total weight.
    real_weighted: bool = False
    # samples_schedule "power": generation t trains on n_t = ceil(M (1 + t)^s) of the samples_per_generation slots
    # (the run's largest n_t); `base_samples` is M. The generation is counted in the pool ({"generation": t}).
    samples_schedule: str = "constant"
    base_samples: int = 0

    @property
    def kind(self) -> RegimeKind:
        """This regime's entry of REGIME_KINDS."""
        return REGIME_KINDS[self.name]

    @property
    def candidates(self) -> int:
        """Synthetic candidates drawn per generation (M x oversample)."""
        return self.samples_per_generation * self.oversample

    @property
    def needs_real_data_each_generation(self) -> bool:
        """Whether a generation's step draws from the chain's original real training set."""
        from_real_set = self.real_slots > 0 and not self.kind.real_from_truth
        return from_real_set or self.preserved_slots > 0 or (self.inflow_slots > 0 and not self.inflow_from_truth)

    @property
    def reports_supply(self) -> bool:
        """Whether the real share varies beyond a constant rho (then the engine reports `synthetic_share`)."""
        return self.schedule != "constant" or self.inflow_slots > 0 or self.preserved_slots > 0

    def real_count(self, knobs: dict, generation: jax.Array | int = 1) -> jax.Array:
        """floor(rho_g M): the number of real points in this chain's batch at `generation`."""
        rho = supply.real_fraction_at(self.schedule, knobs, jnp.asarray(generation))
        # float32 rho (and a schedule's interpolation) carries a relative error ~1e-7: 0.5 + (0.1 - 0.5) 0.75 lands
        # at 0.19999999, which must still give 200 of 1000, not 199.
        tolerance = 1e-3 + 2e-7 * self.samples_per_generation
        return jnp.floor(rho * self.samples_per_generation + tolerance).astype(jnp.int32)

    def real_batch(self, key: jax.Array, model: Any, real: Any, knobs: dict, generation: jax.Array):
        """The real part of the batch: (points, weights, detectable) over P + R + I slots, or None when there is none.

        `detectable` marks the slots a synthetic-data detector looks at (the preserved reserve is trusted, archived
        original data; sampled real points and the inflow are not). The inflow is new data: fresh draws from the truth
        when the model can sample it, otherwise points of the chain's real training set.
        """
        parts = []
        if self.preserved_slots:
            kept = jnp.floor(knobs["preserved_fraction"] * model.real_data_size + 1e-6)
            reserve = _take(real, jnp.arange(self.preserved_slots))
            parts.append((reserve, jnp.arange(self.preserved_slots) < kept, False))
        real_from_truth = self.real_slots if self.kind.real_from_truth else 0
        inflow_from_set = 0 if self.inflow_from_truth else self.inflow_slots
        from_set = self.real_slots - real_from_truth + inflow_from_set
        if from_set:
            real_size = jax.tree.leaves(real)[0].shape[0]
            drawn = _take(real, jax.random.choice(key, real_size, (from_set,), replace=False))
        if self.real_slots:
            if real_from_truth:
                points = model.sample_truth(key, self.real_slots, knobs)
            else:
                points = jax.tree.map(lambda x: x[: self.real_slots], drawn)
            parts.append((points, jnp.arange(self.real_slots) < self.real_count(knobs, generation), True))
        if self.inflow_slots:
            if self.inflow_from_truth:
                points = model.sample_truth(jax.random.fold_in(key, streams.INFLOW), self.inflow_slots, knobs)
            else:
                points = jax.tree.map(lambda x: x[from_set - self.inflow_slots :], drawn)
            parts.append((points, jnp.arange(self.inflow_slots) < knobs["real_inflow"], True))
        if not parts:
            return None
        points = parts[0][0]
        for more, _, _ in parts[1:]:
            points = _concatenate(points, more)
        weights = jnp.concatenate([w for _, w, _ in parts]).astype(jnp.float32)
        detectable = jnp.concatenate([jnp.full(w.shape, d) for _, w, d in parts])
        return points, weights, detectable

    def synthetic_weights(self, keep: jax.Array | None, num_real: jax.Array) -> jax.Array:
        """Weights of the M x oversample candidates: the first kept ones, at most M - floor(rho_g M) of them.

        Without curation (keep None: every candidate kept) this is the first M - floor(rho_g M) samples.
        """
        budget = self.samples_per_generation - num_real
        if keep is None:
            # The count of kept candidates before slot i is i + 1: no prefix sum (XLA:CPU's is a reduce-window pass).
            return (jnp.arange(self.candidates) < budget).astype(jnp.float32)
        # A down-weighted candidate (0 < keep < 1) still takes a slot: the budget counts slots, not weight.
        return (keep * (jnp.cumsum(keep > 0) <= budget)).astype(jnp.float32)

    def mix_weights(self, real_part: tuple | None, synthetic_weights: jax.Array, knobs: dict):
        """Rescale the batch's weights so its real points carry w = knobs['real_weight'] of the total, synthetic 1 - w.

        The total stays the batch's weight before rescaling (the point count without curation), so a fit that reads
        the total (the Gaussian's n - ddof) sees the same n. A batch with no real weight or no synthetic weight keeps
        its weights (w is moot: there is nothing to share). Under accumulate each batch enters the pool with its own
        real share w; the original real set keeps weight 1 per point (BUILD_NOTES.md, "Weighted real/synthetic
        mixing"). Without config.regime.real_weight nothing is rescaled (every point weighs 1).
        """
        if not self.real_weighted or real_part is None:
            return real_part, synthetic_weights
        points, real_weights, detectable = real_part
        real_total, synthetic_total = jnp.sum(real_weights), jnp.sum(synthetic_weights)
        total = real_total + synthetic_total
        share = knobs["real_weight"]
        both = (real_total > 0) & (synthetic_total > 0)
        real_scale = jnp.where(both, share * total / jnp.maximum(real_total, 1e-30), 1.0)
        synthetic_scale = jnp.where(both, (1.0 - share) * total / jnp.maximum(synthetic_total, 1e-30), 1.0)
        return (points, real_weights * real_scale, detectable), synthetic_weights * synthetic_scale

    def start(self, key: jax.Array, model: Any, real: Any, knobs: dict, previous: Any) -> tuple[Any, dict]:
        """Generation 0: fit the original real data; the pool starts as that data."""
        weights = jnp.ones(jax.tree.leaves(real)[0].shape[0], jnp.float32)
        if self.use_statistics:
            statistics = model.statistics(real, weights)
            return model.fit_statistics(key, statistics, knobs, previous), {"statistics": statistics}
        params = model.fit(key, real, weights, knobs, previous)
        if self.samples_schedule == "power":
            return params, {"generation": jnp.int32(0)}
        if self.capacity == 0:
            return params, {}
        size = weights.shape[0]
        pad = self.capacity - size
        data = jax.tree.map(lambda x: jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)]), real)
        pool = {"data": data, "weights": jnp.concatenate([weights, jnp.zeros(pad)]), "end": jnp.int32(size)}
        return params, pool

    def step(self, key: jax.Array, model: Any, pool: dict, batch: Any, weights: jax.Array, knobs: dict, previous: Any):
        """Generation g >= 1: update the pool with the batch and fit the training set the regime defines."""
        if self.samples_schedule == "power":
            # Only the first n_g of the batch's slots (all synthetic: make_regime allows no real slots) train.
            generation = pool["generation"] + 1
            size = supply.samples_at(self.base_samples, knobs["samples_growth"], generation)
            weights = weights * (jnp.arange(weights.shape[0]) < size)
            return self.kind.fit(self, key, model, batch, weights, knobs, previous), {"generation": generation}
        if not self.kind.accumulates:
            return self.kind.fit(self, key, model, batch, weights, knobs, previous), pool
        if self.use_statistics:
            statistics = model.merge_statistics(pool["statistics"], model.statistics(batch, weights))
            return model.fit_statistics(key, statistics, knobs, previous), {"statistics": statistics}
        size = weights.shape[0]
        data = jax.tree.map(
            lambda buf, x: jax.lax.dynamic_update_slice_in_dim(buf, x, pool["end"], 0), pool["data"], batch
        )
        pool_weights = jax.lax.dynamic_update_slice_in_dim(pool["weights"], weights, pool["end"], 0)
        pool = {"data": data, "weights": pool_weights, "end": pool["end"] + size}
        return self.kind.fit(self, key, model, data, pool_weights, knobs, previous), pool

    def step_statistics(
        self,
        key: jax.Array,
        model: Any,
        pool: dict,
        real_part: tuple | None,
        synthetic: Any,
        knobs: dict,
        previous: Any,
    ):
        """`step` when the synthetic part arrives as drawn sufficient statistics: statistics(real points) merged with
        them is the batch's statistics; replace / fresh fit it, accumulate merges it into the pool first."""
        statistics = synthetic
        if real_part is not None:
            points, weights, _ = real_part
            statistics = model.merge_statistics(model.statistics(points, weights), synthetic)
        if self.use_statistics:
            statistics = model.merge_statistics(pool["statistics"], statistics)
            pool = {"statistics": statistics}
        return model.fit_statistics(key, statistics, knobs, previous), pool


def make_regime(config: Any, model: Any, maxima: dict) -> Regime:
    """Build the regime for one static group; `maxima` holds the group's largest real_fraction (over the sweep and
    the schedule), real_inflow and preserved_fraction, so shards of a sweep compile the same static slots."""
    name = config.regime.name
    if name not in REGIME_KINDS:
        raise ValueError(f"config.regime.name: unknown regime {name!r}; allowed: {', '.join(REGIMES)}")
    kind = REGIME_KINDS[name]
    samples = config.samples_per_generation
    max_real_fraction = maxima.get("real_fraction", 0.0)
    real_slots = int(max_real_fraction * samples + 1e-6)
    has_truth = base.supports(model, base.TruthSampler)
    if kind.real_from_truth and not has_truth:
        raise ValueError(
            f"config.regime.name: {name!r} needs a model that can sample its truth; {config.model.name!r} cannot"
        )
    inflow_slots = int(maxima.get("real_inflow", 0))
    # Accumulating regimes keep every original point in the pool already: a reserve would only duplicate it.
    preserved_slots = (
        0 if kind.accumulates else int(maxima.get("preserved_fraction", 0.0) * model.real_data_size + 1e-6)
    )
    from_set = (0 if kind.real_from_truth else real_slots) + (0 if has_truth else inflow_slots)
    if from_set > model.real_data_size:
        raise ValueError(
            f"config.regime.real_fraction: {max_real_fraction} x M = {real_slots} real points per generation "
            f"(+ real_inflow {0 if has_truth else inflow_slots}) exceeds the real training set "
            f"({model.real_data_size}); lower it or raise config.model.real_data_size"
        )
    keep_raw_pool = config.regime.get("keep_raw_pool", False)
    use_statistics = keeps_statistics_pool(name, model, keep_raw_pool)
    curation = config.get("curation") or {}
    oversample = int(curation.get("oversample", 1))
    capacity = 0
    if keeps_raw_pool(name, model, keep_raw_pool):
        batch_size = preserved_slots + real_slots + inflow_slots + samples * oversample
        capacity = model.real_data_size + config.num_generations * batch_size
    schedule = config.regime.get("real_fraction_schedule", "constant")
    real_weighted = config.regime.get("real_weight") is not None
    if real_weighted and contract.fit_weighting(model) == "mask":
        raise ValueError(
            "config.regime.real_weight: this family's fit reads weights only as in or out of the pool "
            "(fit_weighting = 'mask'), so fractional weights would be silently ignored; drop real_weight"
        )
    if real_weighted and config.model.get("sampling", "points") == "statistics":
        raise ValueError(
            "config.regime.real_weight: weights points, and model.sampling = 'statistics' draws no synthetic points; "
            "use model.sampling = 'points' or drop real_weight"
        )
    samples_schedule = config.regime.get("samples_schedule") or "constant"
    base_samples = 0
    if samples_schedule == "power":
        _check_samples_schedule(config, name, real_slots, inflow_slots, preserved_slots, oversample)
        growth = config.regime.samples_growth
        largest = max(growth) if isinstance(growth, (tuple, list)) else growth
        base_samples, samples = samples, supply.largest_samples(samples, largest, config.num_generations)
    return Regime(
        name=name,
        samples_per_generation=samples,
        real_slots=real_slots,
        capacity=capacity,
        use_statistics=use_statistics,
        schedule=schedule,
        inflow_slots=inflow_slots,
        preserved_slots=preserved_slots,
        oversample=oversample,
        inflow_from_truth=has_truth,
        synthetic_statistics=config.model.get("sampling", "points") == "statistics",
        real_weighted=real_weighted,
        samples_schedule=samples_schedule,
        base_samples=base_samples,
    )


def _check_samples_schedule(config: Any, name: str, real: int, inflow: int, preserved: int, oversample: int) -> None:
    """One-line errors for what the power samples schedule does not combine with (it masks a replace batch)."""
    why = None
    if name != "replace":
        why = f"regime.name {name!r} (allowed: replace)"
    elif real or inflow or preserved:
        why = "real slots (real_fraction, real_inflow, preserved_fraction must be 0 or absent)"
    elif oversample > 1 or (config.get("curation") or {}).get("name", "none") != "none":
        why = "curation"
    elif config.model.get("sampling", "points") == "statistics":
        why = "model.sampling = 'statistics' (the synthetic count is the engine's M; use 'points')"
    if why is not None:
        raise ValueError(f"config.regime.samples_schedule: 'power' does not combine with {why}")
