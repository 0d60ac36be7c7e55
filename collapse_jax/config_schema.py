"""Every config field declared once (type, range or choices, optional, sweepable, one-line doc) and one validator.

The shared run fields are declared here; a family declares its `config.model.*` fields as `config_fields` on its Model.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from collections.abc import Callable
from typing import Any

import ml_collections

KINDS = ("int", "number", "str", "bool", "ints", "strs", "any", "block")


@dataclasses.dataclass(frozen=True)
class Field:
    """One config field: `kind` (int | number | str | bool | ints: a tuple of ints | strs: a str or a tuple of them |
    any: checked by `check` | block: a sub-block read by its own code), range [low, high] (open ends with low_open /
    high_open), `choices` for strings, whether None is allowed (`optional`) and whether a tuple sweeps it."""

    kind: str
    doc: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    optional: bool = False
    sweepable: bool = False
    noun: str = "value"  # the error's word for a value outside choices: "unknown regime 'recycle'"
    check: Callable[[Any], None] | None = None  # extra one-line check of the whole value (kind "any" relies on it)
    number_choices: bool = False  # a number, or a string among `choices` (KDE bandwidth: 0.2 or "scott")

    def __post_init__(self):
        assert self.kind in KINDS, self.kind


def integer(doc: str, low: int | None = None, **options) -> Field:
    return Field("int", doc, low=low, **options)


def number(doc: str, low: float | None = None, high: float | None = None, **options) -> Field:
    return Field("number", doc, low=low, high=high, **options)


def choice(doc: str, choices: tuple, **options) -> Field:
    return Field("str", doc, choices=tuple(choices), **options)


def text(doc: str, **options) -> Field:
    return Field("str", doc, **options)


def flag(doc: str) -> Field:
    return Field("bool", doc)


def _range_text(field: Field) -> str:
    parts = []
    if field.low is not None:
        parts.append(f"{'>' if field.low_open else '>='} {field.low:g}")
    if field.high is not None:
        parts.append(f"{'<' if field.high_open else '<='} {field.high:g}")
    return " and ".join(parts)


def _describe(field: Field) -> str:
    bounds = _range_text(field)
    if field.kind == "int":
        text_ = "an integer" + (f" {bounds}" if bounds else "")
    elif field.kind == "number":
        text_ = "a finite number" + (f" {bounds}" if bounds else "")
        if field.number_choices:
            text_ += f" or one of {', '.join(field.choices)}"
    elif field.kind == "str":
        text_ = f"one of {', '.join(field.choices)}" if field.choices else "a string"
    elif field.kind == "bool":
        text_ = "True or False"
    elif field.kind == "ints":
        text_ = "a non-empty tuple of integers" + (f" {bounds}" if bounds else "")
    else:
        text_ = "a string or a tuple of strings"
    if field.optional:
        text_ += " or None"
    if field.sweepable:
        text_ += " (a tuple sweeps it)"
    return text_


def _in_range(field: Field, value: float) -> bool:
    if field.low is not None and (value <= field.low if field.low_open else value < field.low):
        return False
    return field.high is None or (value < field.high if field.high_open else value <= field.high)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _one_ok(field: Field, value: Any) -> bool:
    """Whether one (non-tuple) value has the field's kind and lies in its range."""
    if field.kind == "int":
        return _is_int(value) and _in_range(field, value)
    if field.kind == "number":
        if isinstance(value, str) and field.number_choices:
            return value in field.choices
        real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        return real and math.isfinite(value) and _in_range(field, value)
    if field.kind == "str":
        return isinstance(value, str) and (not field.choices or value in field.choices)
    if field.kind == "bool":
        return isinstance(value, bool)
    if field.kind == "ints":
        items = value if isinstance(value, (tuple, list)) else ()
        return bool(items) and all(_is_int(item) and _in_range(field, item) for item in items)
    if field.kind == "strs":
        items = value if isinstance(value, (tuple, list)) else (value,)
        return all(isinstance(item, str) for item in items)
    return True


def check_value(path: str, field: Field, value: Any) -> None:
    """One-line ValueError `config.<path>: ...` unless `value` fits the declaration."""
    if value is None:
        if not field.optional:
            raise ValueError(f"config.{path}: must be {_describe(field)}, got None")
        return
    sweep = field.sweepable and isinstance(value, (tuple, list)) and field.kind not in ("ints", "strs", "any")
    values = list(value) if sweep else [value]
    if sweep and not values:
        raise ValueError(f"config.{path}: an empty tuple sweeps nothing; give at least one value")
    for item in values:
        if field.kind == "str" and field.choices and isinstance(item, str) and item not in field.choices:
            raise ValueError(f"config.{path}: unknown {field.noun} {item!r}; allowed: {', '.join(field.choices)}")
        if not _one_ok(field, item):
            raise ValueError(f"config.{path}: must be {_describe(field)}, got {item!r}")
    if field.check is not None:
        field.check(value)


def _check_keep_quantiles(value: Any) -> None:
    from collapse_jax import curation

    if not isinstance(value, (tuple, list)) or not value:  # quantile_pairs would fail on len() or an empty band
        raise ValueError(
            f"config.curation.keep_quantiles: must be a (low, high) pair or a tuple of pairs, got {value!r}"
        )
    curation.quantile_pairs(value)


def _check_seeds(value: Any) -> None:
    from collapse_jax import sweep

    sweep.seeds_of(ml_collections.ConfigDict({"seeds": value}))


def _check_chain_block(value: Any) -> None:
    from collapse_jax import sweep

    sweep.chain_block_setting(ml_collections.ConfigDict({"chain_block": value}))


def _check_mapping(path: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, (dict, ml_collections.ConfigDict)):
            raise ValueError(f"config.{path}: must be a dict {{metric or knob: value}} or None, got {value!r}")

    return check


def _check_tolerance(value: Any) -> None:
    if not isinstance(value, (dict, ml_collections.ConfigDict)):
        check_value("report.collapse_tolerance", number("", low=0.0, low_open=True), value)


def shared_fields() -> dict[str, Field]:
    """The run fields every config shares (experiments/configs/common.py writes them), by dotted path."""
    from collapse_jax import curation, regimes, supply, sweep
    from collapse_jax.models import base

    probability = {"low": 0.0, "high": 1.0}
    return {
        "seeds": Field("any", "a count n (seeds 0..n-1) or a tuple of distinct seeds >= 0", check=_check_seeds),
        "num_generations": integer("generations after the fit on real data", low=0),
        "samples_per_generation": integer("M: points each generation trains on", low=1, sweepable=True),
        "root_seed": integer("root of every chain's random stream", low=0, high=2**32 - 1),
        "chunk_generations": integer("generations per compiled chunk", low=1),
        "chain_block": Field("any", "'auto' or chains per vmapped block", check=_check_chain_block),
        "record_every": integer("keep every k-th generation's metrics on disk", low=1),
        "checkpoint_every": integer("generations between checkpoints", low=1),
        "max_checkpoints_to_keep": integer("newest checkpoints kept", low=1),
        "keep_period": integer("also keep every k-th generation's checkpoint", low=1, optional=True),
        "make_plots": flag("figures and report.md after the run"),
        "tensorboard": flag("TensorBoard summaries after every chunk"),
        "num_shards": integer("shards of the sweep (launch.sweep sets it)", low=1),
        "shard_index": integer("this shard (launch.sweep sets it)", low=0),
        "slurm": Field("block", "SLURM defaults for launch.sweep (validated there)"),
        "regime.name": choice("pool update", regimes.REGIMES, sweepable=True, noun="regime"),
        "regime.real_fraction": number("rho: real share of each generation's M", sweepable=True, **probability),
        "regime.keep_raw_pool": flag("keep the raw accumulated pool even with sufficient statistics"),
        "regime.real_fraction_schedule": choice("how rho falls", supply.SCHEDULES, sweepable=True, noun="schedule"),
        "regime.final_real_fraction": number("rho at the schedule's end", sweepable=True, **probability),
        "regime.schedule_generations": number("T of the schedule", low=0.0, low_open=True, sweepable=True),
        "regime.real_inflow": integer("new real points per generation on top of M", low=0, sweepable=True),
        "regime.preserved_fraction": number(
            "share of the originals in every training set", sweepable=True, **probability
        ),
        "model.name": choice("model family", tuple(base.available_models()), noun="model"),
        "model.sampling": choice("points or exact sufficient statistics", sweep.SAMPLINGS),
        "curation.name": choice("curation stage", curation.CURATIONS, sweepable=True, noun="curation"),
        "curation.oversample": integer("candidates drawn per synthetic slot", low=1),
        "curation.likelihood_reference": choice("model ranking candidates", curation.LIKELIHOOD_REFERENCES),
        "curation.keep_quantiles": Field(
            "any", "(low, high) band kept, or a tuple of bands", check=_check_keep_quantiles
        ),
        "curation.detector": choice("watermark detector", curation.DETECTORS),
        "curation.keep_good": number(
            "phi: keep probability of a good candidate", optional=True, sweepable=True, **probability
        ),
        "curation.keep_bad": number(
            "psi: keep probability of a bad candidate", optional=True, sweepable=True, **probability
        ),
        "curation.true_positive_rate": number("abstract detector's TPR", optional=True, sweepable=True, **probability),
        "curation.false_positive_rate": number("abstract detector's FPR", optional=True, sweepable=True, **probability),
        "curation.watermark_z_threshold": number("LM detector's z threshold", optional=True, sweepable=True),
        "curation.detected_weight": number("weight of a flagged point", optional=True, sweepable=True, **probability),
        # (0, 1]: the VAE's `is_good` accepts 1 (every real test image passes); families whose good region needs a
        # quantile below 1 refuse it in make_model (curation.good_region_mass).
        "curation.good_region_mass": number("truth mass is_good counts as good", low=0.0, high=1.0, low_open=True),
        "report.metrics": Field("strs", "metrics with strength figures (None: all)", optional=True),
        "report.collapse_tolerance": Field(
            "any", "breakdown band, one number or {metric: band}", check=_check_tolerance
        ),
        "report.knobs": Field("strs", "strength axes (None: every swept knob)", optional=True),
        "report.directions": Field(
            "any", "{knob: higher_is_safer | lower_is_safer}", optional=True, check=_check_mapping("report.directions")
        ),
        "report.reference_lines": Field("any", "((knob, value, label), ...) overlays", optional=True),
    }


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
            hint = f"; did you mean config.{close[0]}?" if close else "; see collapse_jax/config_schema.py"
            raise ValueError(f"config.{path}: unknown field{hint}")
        check_value(path, field, value)


# The inactive curation block experiments/configs/common.py writes: a group that matches it runs without a block.
INACTIVE_CURATION = {
    "name": "none",
    "oversample": 1,
    "likelihood_reference": "current",
    "keep_quantiles": (0.1, 1.0),
    "detector": "auto",
    "good_region_mass": 0.95,
}


def without_unset(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy without unset (None) curation fields and without an inactive curation block.

    The library reads an absent curation field as its default and an absent block as "no curation" (which, for the
    LM, also keeps epoch-based training): so a config built on common.py computes exactly what it did without one.
    """
    block = config.get("curation")
    if block is None:
        return config
    copy = ml_collections.ConfigDict(config.to_dict())
    kept = {key: value for key, value in copy.curation.items() if value is not None}
    inactive = {key: value.to_dict() if hasattr(value, "to_dict") else value for key, value in kept.items()}
    if {k: tuple(v) if isinstance(v, list) else v for k, v in inactive.items()} == INACTIVE_CURATION or not kept:
        del copy["curation"]
    else:
        copy.curation = ml_collections.ConfigDict(kept)
    return copy
