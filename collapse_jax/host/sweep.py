"""Config validation and sweep expansion: tuple-valued fields become chains (dynamic knobs) or static groups.

Dynamic knobs (seed, real_fraction, the model's `knob_fields`) expand into the chain axis of one compile; static sweep
fields (regime name, M, and the family's `static_sweep_fields`) compile once per value. All land in one table.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import ml_collections
import numpy as np

from collapse_jax.analysis import breakdown
from collapse_jax.core import curation, regimes, supply
from collapse_jax.host import config_schema
from collapse_jax.host.config_schema import chain_block_setting, seeds_of  # noqa: F401  (re-exported)
from collapse_jax.models import base
from collapse_jax.models.contract import evaluate_uses_samples

ENGINE_KNOB_FIELDS = {"real_fraction": "regime.real_fraction"}
ENGINE_STATIC_SWEEP_FIELDS = ("regime.name", "samples_per_generation")
# Static sweep fields of the mitigation blocks, used only when the config has them (no label column otherwise).
OPTIONAL_STATIC_SWEEP_FIELDS = ("curation.name", "regime.real_fraction_schedule")
LABEL_NAMES = {"regime.name": "regime", "curation.name": "curation"}


@dataclasses.dataclass(kw_only=True)
class Group:
    """One static combination: its config (sweep fields set to scalars), its chains' knobs and global chain ids, and
    the family, regime and curation stage built from it (once: the runner, restore and the kit reuse them)."""

    index: int
    config: ml_collections.ConfigDict
    labels: dict[str, Any]  # static knob name -> value shared by the group's chains
    knobs: dict[str, np.ndarray]  # dynamic knob name -> [chains]
    chain_ids: np.ndarray
    # Largest rho (over the sweep and the schedule), real_inflow and preserved_fraction of the whole (unsharded) group:
    # they set the static real slots, so a shard of the sweep compiles the same shapes, and bits, as the single job.
    maxima: dict[str, float]
    model: Any
    regime: regimes.Regime
    curation: curation.Curation


def get_field(config: ml_collections.ConfigDict, path: str) -> Any:
    """config['a.b.c'] by dotted path, with a one-line error naming a missing field."""
    node = config
    for part in path.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            raise ValueError(f"config.{path}: missing field")
        node = node[part]
    return node


def set_field(config: ml_collections.ConfigDict, path: str, value: Any) -> None:
    """config['a.b.c'] = value."""
    *parents, leaf = path.split(".")
    node = config
    for part in parents:
        node = node[part]
    with node.ignore_type():
        node[leaf] = value


def label_name(path: str) -> str:
    """Results column name of a swept field: 'regime.name' -> 'regime', 'model.dim' -> 'dim'."""
    return LABEL_NAMES.get(path, path.split(".")[-1])


def _values(config: ml_collections.ConfigDict, path: str) -> list:
    if path == "curation.keep_quantiles":  # one (low, high) pair is a single setting; a tuple of pairs sweeps
        return curation.quantile_pairs(config.curation.get("keep_quantiles", (0.1, 1.0)))
    value = get_field(config, path)
    return list(value) if isinstance(value, (tuple, list)) else [value]


def validate(config: ml_collections.ConfigDict) -> None:
    """Every field against its declaration (shared and the family's; unknown fields) and the report block, before
    anything is built; each failure is a one-line ValueError naming the field. Cross-field rules need one static
    group's values: config_schema.resolve applies them per group."""
    config_schema.validate(config)
    breakdown.settings(config.to_dict(), None)  # a bad config.report fails now, not after the run


def validate_sampling(config: ml_collections.ConfigDict, model: Any) -> None:
    """config.model.sampling: "points" (draw M synthetic points) or "statistics" (draw their sufficient statistics).

    "statistics" replaces the points by their exact distribution, so everything that looks at single synthetic points
    is ruled out: a raw pool (accumulate_subsample, keep_raw_pool) and per-sample curation or oversampling.
    """
    if config.model.sampling == "points":
        return
    drawable = base.supports(model, base.SufficientStatistics) and base.supports(model, base.StatisticsSampler)
    if not drawable or evaluate_uses_samples(model):
        raise ValueError(
            f"config.model.sampling: 'statistics' needs a model with sample_statistics whose evaluate ignores the "
            f"samples; {config.model.name!r} is not one"
        )
    regime = config.regime.name
    if regimes.keeps_raw_pool(regime, model, config.regime.get("keep_raw_pool", False)):
        raise ValueError(
            f"config.model.sampling: 'statistics' keeps no points, so regime {regime!r} with a raw pool cannot run; "
            f"use sampling = 'points'"
        )
    block = config.get("curation") or {"name": "none", "oversample": 1}
    curation_name, oversample = block["name"], block["oversample"]
    if curation_name != "none" or oversample != 1:
        raise ValueError(
            f"config.model.sampling: 'statistics' draws no points to curate (curation.name = {curation_name!r}, "
            f"curation.oversample = {oversample!r}); use sampling = 'points' or curation none with oversample 1"
        )


def static_sweep_fields(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """Fields whose tuple values make separate compiled groups."""
    family = base.family_class(config.model.name)  # read from the class: the config still holds tuples here
    optional = tuple(path for path in OPTIONAL_STATIC_SWEEP_FIELDS if _has_field(config, path))
    own = tuple(family.static_sweep_fields) if base.supports(family, base.StaticSweepFields) else ()
    # A family's static field the config leaves out takes the family's default: one group, no label column.
    own = tuple(path for path in own if _has_field(config, path))
    return ENGINE_STATIC_SWEEP_FIELDS + optional + own


def _has_field(config: ml_collections.ConfigDict, path: str) -> bool:
    parent, leaf = path.split(".")
    return parent in config and isinstance(config[parent], ml_collections.ConfigDict) and leaf in config[parent]


def _split_pairs(knobs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A pair-valued knob column [chains, 2] becomes its two named scalar knobs (keep_quantiles -> low, high)."""
    for name, (low, high) in curation.PAIR_KNOBS.items():
        if name in knobs:
            pair = knobs.pop(name)
            knobs[low], knobs[high] = pair[:, 0], pair[:, 1]
    return knobs


def group_maxima(knobs: dict[str, np.ndarray]) -> dict[str, float]:
    """The largest real share (rho or the schedule's end), inflow and preserved fraction of a group's chains."""
    rho = knobs["real_fraction"]
    if "final_real_fraction" in knobs:
        rho = np.maximum(rho, knobs["final_real_fraction"])
    maxima = {"real_fraction": float(rho.max())}
    for name in ("real_inflow", "preserved_fraction"):
        if name in knobs:
            maxima[name] = float(knobs[name].max())
    return maxima


def expand(config: ml_collections.ConfigDict) -> list[Group]:
    """Validate the config and split its sweep into static groups of chains (knobs outermost, seeds innermost).

    Each group's family, regime and curation stage are built here, once: validating needs them (the family's knobs,
    the regime's real slots from the knob maxima), and every group must validate before a run writes anything.
    """
    validate(config)
    config = config_schema.without_unset(config)  # common.py's inactive curation block runs as no block
    static_fields = static_sweep_fields(config)
    static_values = [_values(config, path) for path in static_fields]
    groups, next_chain = [], 0
    num_shards, shard_index = config.get("num_shards", 1), config.get("shard_index", 0)
    if (
        not isinstance(num_shards, int)
        or num_shards < 1
        or not isinstance(shard_index, int)
        or not 0 <= shard_index < num_shards
    ):
        raise ValueError(f"config.shard_index: must be in [0, num_shards = {num_shards}), got {shard_index!r}")
    for index, combination in enumerate(itertools.product(*static_values)):
        group_config = ml_collections.ConfigDict(config.to_dict())
        for path, value in zip(static_fields, combination):
            set_field(group_config, path, value)
        group_config = config_schema.resolve(group_config)
        model = base.build(group_config)
        validate_sampling(group_config, model)
        stage = curation.make_curation(group_config, model)  # validates the curation block
        knob_fields = {
            **ENGINE_KNOB_FIELDS,
            **supply.knob_fields(group_config),
            **stage.knob_fields(group_config.get("curation") or {}),
            **model.knob_fields,
        }
        knob_values = [_values(group_config, path) for path in knob_fields.values()]
        rows = [(*combo, seed) for combo in itertools.product(*knob_values) for seed in seeds_of(group_config)]
        columns = list(zip(*rows))
        knobs = {name: np.asarray(column, np.float64) for name, column in zip(knob_fields, columns[:-1])}
        knobs = _split_pairs(knobs)
        knobs["seed"] = np.asarray(columns[-1], np.int32)
        maxima = group_maxima(knobs)
        regime = regimes.make_regime(group_config, model, maxima)  # validates before any write
        labels = {label_name(path): value for path, value in zip(static_fields, combination)}
        chain_ids = np.arange(next_chain, next_chain + len(rows))
        next_chain += len(rows)
        groups.append(
            Group(
                index=index,
                config=group_config,
                labels=labels,
                knobs=knobs,
                chain_ids=chain_ids,
                maxima=maxima,
                model=model,
                regime=regime,
                curation=stage,
            )
        )
    return _shard(groups, next_chain, shard_index, num_shards) if num_shards > 1 else groups


def _shard(groups: list[Group], total: int, shard_index: int, num_shards: int) -> list[Group]:
    """Keep the chains of contiguous global-id range `shard_index` of `num_shards` (for sweeps split into jobs)."""
    low, high = total * shard_index // num_shards, total * (shard_index + 1) // num_shards
    kept = []
    for group in groups:
        mask = (group.chain_ids >= low) & (group.chain_ids < high)
        if mask.any():
            knobs = {name: value[mask] for name, value in group.knobs.items()}
            kept.append(dataclasses.replace(group, knobs=knobs, chain_ids=group.chain_ids[mask]))
    return kept
