"""Every config field declared once (type, range or choices, optional, sweepable, one-line doc) and one validator.

The shared run fields are declared here; a family declares its `config.model.*` fields as `config_fields` on its Model.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Callable
from typing import Any

import ml_collections

from collapse_jax.models import fields
from collapse_jax.models.fields import (  # noqa: F401  (re-exported: the declaration vocabulary and the normalizer)
    INACTIVE_CURATION,
    Field,
    check_value,
    choice,
    flag,
    integer,
    number,
    text,
    without_unset,
)


def seeds_of(config: ml_collections.ConfigDict) -> list[int]:
    """config.seeds: a count n (seeds 0..n-1) or a tuple of seeds."""
    seeds = config.seeds
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"config.seeds: a count must be >= 1, got {seeds}")
        return list(range(int(seeds)))
    if isinstance(seeds, (tuple, list)) and seeds and all(isinstance(s, numbers.Integral) and s >= 0 for s in seeds):
        if len(set(seeds)) != len(seeds):
            raise ValueError("config.seeds: seeds must be distinct")
        return [int(s) for s in seeds]
    raise ValueError(f"config.seeds: must be a positive count or a tuple of non-negative integers, got {seeds!r}")


def chain_block_setting(config: ml_collections.ConfigDict) -> int | str:
    """config.chain_block as "auto" or a positive int (a command-line override of a str field arrives as digits)."""
    value = config.get("chain_block", "auto")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value == "auto" or (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"config.chain_block: must be 'auto' or an integer >= 1, got {value!r}")


def _check_seeds(value: Any) -> None:
    seeds_of(ml_collections.ConfigDict({"seeds": value}))


def _check_chain_block(value: Any) -> None:
    chain_block_setting(ml_collections.ConfigDict({"chain_block": value}))


def _check_mapping(path: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, (dict, ml_collections.ConfigDict)):
            raise ValueError(f"config.{path}: must be a dict {{metric or knob: value}} or None, got {value!r}")

    return check


def _check_tolerance(value: Any) -> None:
    if not isinstance(value, (dict, ml_collections.ConfigDict)):
        check_value("report.collapse_tolerance", number("", low=0.0, low_open=True), value)


def shared_fields() -> dict[str, Field]:
    """The run fields every config shares, by dotted path. A field with a default is in every config
    (experiments/configs/common.py writes them all, from here); one without is absent unless a config sets it."""
    from collapse_jax.core import curation, regimes, supply
    from collapse_jax.host import devices, generators
    from collapse_jax.models import base

    probability = {"low": 0.0, "high": 1.0}
    return {
        "seeds": Field(
            "any", "a count n (seeds 0..n-1) or a tuple of distinct seeds >= 0", check=_check_seeds, default=100
        ),
        "num_generations": integer(
            "generations after the fit on real data (results have one more column)", low=0, default=100
        ),
        "samples_per_generation": integer(
            "M: points each generation trains on (and synthetic points each model draws)",
            low=1,
            sweepable=True,
            default=100,
        ),
        "root_seed": integer(
            "root of every chain's stream: key = fold_in(fold_in(root_seed, seed), generation)",
            low=0,
            high=2**32 - 1,
            default=0,
        ),
        "regime.name": choice(
            "pool update: replace | accumulate | accumulate_subsample | fresh",
            regimes.REGIMES,
            sweepable=True,
            noun="regime",
            default="replace",
        ),
        "regime.real_fraction": number(
            "rho: real share of each generation's M points", sweepable=True, default=0.0, **probability
        ),
        "regime.keep_raw_pool": flag(
            "keep the raw accumulated pool even with sufficient statistics (slower; for cross-checks)", default=False
        ),
        "chunk_generations": Field(
            "any",
            "K: 'auto' (about 4e6 chain-generations of work per chunk, at most an integer checkpoint_every) or "
            "generations per compiled chunk (metrics and checkpoints between chunks; results do not depend on it)",
            check=devices.chunk_generations_setting,
            default="auto",
        ),
        "chain_block": Field(
            "any",
            "B: 'auto' (the largest block in a per-device memory budget) or chains per vmapped block (fixes the bits "
            "across chain counts, devices and shards)",
            check=_check_chain_block,
            default="auto",
        ),
        "cpu_devices": Field(
            "any",
            "on a CPU backend, JAX devices the chains are split over: 1, an integer, or 'auto' (one per usable core); "
            "experiments.main sets it before JAX starts. Pays off when per-chain operations are small (a diffusion "
            "MLP); pick chain_block so chains fill every device (the dry run shows the padding)",
            check=devices.cpu_devices_setting,
            default=1,
        ),
        "generator": choice(
            "random-number generator of the families' normal and uniform draws, same values either way: auto (the "
            "faster on this machine, measured in a long run's first chunks and cached) | unrolled | jax",
            generators.SETTINGS,
            default=generators.AUTO,
        ),
        "record_every": integer(
            "keep every k-th generation's metrics on disk (0, the last and event generations always)", low=1, default=1
        ),
        "checkpoint_every": Field(
            "any",
            "'auto' (a checkpoint every ~30 s of wall time, at chunk ends) or generations between checkpoints (rounded "
            "up to a chunk); generation 0, the last generation and a stop request always checkpoint",
            check=devices.checkpoint_every_setting,
            default="auto",
        ),
        "max_checkpoints_to_keep": integer("newest checkpoints kept", low=1, default=2),
        "keep_period": integer("also keep every k-th generation's checkpoint (None: none)", low=1, optional=True),
        "make_plots": flag("figures and report.md after the run", default=True),
        "tensorboard": flag("TensorBoard summaries into <workdir>/tensorboard after every chunk", default=False),
        "num_shards": integer("shards of the sweep (launch.sweep sets it; absent: 1)", low=1),
        "shard_index": integer("this shard (launch.sweep sets it; absent: 0)", low=0),
        "slurm": Field("block", "SLURM defaults for launch.sweep (validated there)"),
        "regime.real_fraction_schedule": choice(
            "how rho falls: constant | linear | exponential | step (absent: constant)",
            supply.SCHEDULES,
            sweepable=True,
            noun="schedule",
        ),
        "regime.final_real_fraction": number("rho at the schedule's end", sweepable=True, **probability),
        "regime.schedule_generations": number("T of the schedule", low=0.0, low_open=True, sweepable=True),
        "regime.real_inflow": integer(
            "new real points per generation on top of M (absent: none)", low=0, sweepable=True
        ),
        "regime.preserved_fraction": number(
            "share of the originals in every training set (absent: none)", sweepable=True, **probability
        ),
        "regime.samples_schedule": choice(
            "points generation t trains on: constant (M) | power (ceil(M (1 + t)^s)) (absent: constant)",
            supply.SAMPLES_SCHEDULES,
            noun="samples schedule",
        ),
        "regime.samples_growth": number(
            "s of the power samples schedule, n_t = ceil(M (1 + t)^s)", low=0.0, high=4.0, sweepable=True
        ),
        "regime.real_weight": number(
            "w: share of each batch's training weight on its real points (None: weight 1 per point)",
            low=0.0,
            high=1.0,
            low_open=True,
            optional=True,
            sweepable=True,
        ),
        # A built-in family or an importable module path (base.family_module's one-line error lists the built-ins).
        "model.name": text("model family: a built-in name or a module path", check=base.family_module),
        **{f"model.{name}": field for name, field in base.SHARED_MODEL_FIELDS.items()},
        "curation.name": choice(
            "curation stage between sampling and the next pool (none: inactive)",
            curation.CURATIONS,
            sweepable=True,
            noun="curation",
            default="none",
        ),
        "curation.oversample": integer(
            "k: draw k * M synthetic candidates, keep the first survivors up to M", low=1, default=1
        ),
        # Each curation operator's own fields (knobs, detector, likelihood reference): declared in its table entry.
        **curation.operator_config_fields(),
        # (0, 1]: the VAE's `is_good` accepts 1 (every real test image passes); families whose good region needs a
        # quantile below 1 refuse it in make_model (curation.good_region_mass).
        "curation.good_region_mass": number(
            "truth mass a verifier's is_good counts as good", low=0.0, high=1.0, low_open=True, default=0.95
        ),
        "report.metrics": Field(
            "strs", "metrics with strength figures (None: all but the bookkeeping ones)", optional=True
        ),
        "report.collapse_tolerance": Field(
            "any",
            "breakdown band: the final median leaves +-tolerance x its generation-0 value; one number or "
            "{metric: band}",
            check=_check_tolerance,
            default=0.5,
        ),
        "report.knobs": Field("strs", "strength axes (None: every swept numeric knob)", optional=True),
        "report.directions": Field(
            "any",
            "{knob: higher_is_safer | lower_is_safer} (None: decided from the data)",
            optional=True,
            check=_check_mapping("report.directions"),
        ),
        "report.reference_lines": Field(
            "any", "((knob, value, label), ...) vertical lines on the strength figures", optional=True
        ),
    }


def shared_config() -> ml_collections.ConfigDict:
    """Every shared field that has a default, at it: the config experiments/configs/common.py starts from (with an
    empty model block for the family's fields)."""
    config = ml_collections.ConfigDict()
    config.model = ml_collections.ConfigDict()
    for path, field in shared_fields().items():
        if field.has_default and not path.startswith("model."):
            *parents, leaf = path.split(".")
            node = config
            for part in parents:
                if part not in node:
                    node[part] = ml_collections.ConfigDict()
                node = node[part]
            node[leaf] = field.default
    return config


def shared_rules() -> tuple[fields.Rule, ...]:
    """Cross-field rules of the shared fields and the curation operators."""
    from collapse_jax.core import curation, supply

    schedules = tuple(schedule for schedule in supply.SCHEDULES if schedule != "constant")
    return (
        *(
            fields.needs(
                "regime.real_fraction_schedule",
                schedules,
                f"regime.{name}",
                f"config.regime.{name}: required by a non-constant real_fraction_schedule",
            )
            for name in ("final_real_fraction", "schedule_generations")
        ),
        fields.needs(
            "regime.samples_schedule",
            ("power",),
            "regime.samples_growth",
            "config.regime.samples_growth: required by samples_schedule = 'power'",
        ),
        *curation.CURATION_RULES,
    )


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """One static group's settings: every declared field with a default present (absent ones at it, in the blocks
    the config has) and every rule applied (shared, curation, the family's); one-line ValueError on a broken rule."""
    from collapse_jax.models import base

    declared, _ = declared_fields(config.model.name)
    return fields.resolve(config, declared, shared_rules() + base.family_rules(config.model.name))


# Blocks whose every sub-field is read as one value (a dict of metric -> band is one field, not unknown fields).
_LEAF_BLOCKS = ("report.collapse_tolerance", "report.directions", "slurm")


def family_fields(model_name: str) -> dict[str, Field] | None:
    """The family's `config_fields` ({field under config.model: Field}), or None when it declares none.

    Read from the family's class (make_model's return annotation, as the sweep reads static_sweep_fields), so built-in
    and external families are checked the same way.
    """
    from collapse_jax.models import base, contract

    family = base.family_class(model_name)
    return family.config_fields if family is not None and contract.supports(family, contract.ConfigFields) else None


def declared_fields(model_name: str | None) -> tuple[dict[str, Field], bool]:
    """All declared fields by dotted path, and whether config.model.* is fully declared (the family has the hook)."""
    fields = shared_fields()
    family = family_fields(model_name) if isinstance(model_name, str) and model_name else None
    if family is not None:
        fields.update({f"model.{name}": field for name, field in family.items()})
    return fields, family is not None


def declared_defaults(model_name: str | None) -> dict[str, Any]:
    """Dotted path -> default of every declared field that has one (the shared fields and the family's)."""
    declared, _ = declared_fields(model_name)
    return {path: field.default for path, field in declared.items() if field.has_default}


def leaves(config: ml_collections.ConfigDict, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> value of every field (sub-blocks named in _LEAF_BLOCKS count as one value)."""
    flat = {}
    for key in config.keys():
        value, path = config[key], f"{prefix}{key}"
        if isinstance(value, (dict, ml_collections.ConfigDict)) and path not in _LEAF_BLOCKS:
            flat.update(leaves(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def validate(config: ml_collections.ConfigDict) -> None:
    """Check every field against its declaration: unknown fields (with the closest known one), types, ranges."""
    fields, family_declared = declared_fields(config.get("model", {}).get("name"))
    for path, value in leaves(config).items():
        field = fields.get(path)
        if field is None:
            if path.startswith("model.") and not family_declared:
                continue  # a family without `config_fields` validates its own block in make_model
            close = difflib.get_close_matches(path, list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean config.{close[0]}?" if close else "; see collapse_jax/host/config_schema.py"
            raise ValueError(f"config.{path}: unknown field{hint}")
        check_value(path, field, value)
    present = leaves(config)
    for path, field in fields.items():
        # A family field declared without a default (and not optional) is one the family cannot do without.
        if path.startswith("model.") and not field.has_default and not field.optional and path not in present:
            raise ValueError(f"config.{path}: missing field ({field.doc})")


# The inactive curation block experiments/configs/common.py writes: a group that matches it runs without a block.
