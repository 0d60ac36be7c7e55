"""How every part declares its settings: `Field` (type, range or choices, default, optional, sweepable, one-line doc),
`Rule` (what one setting implies for or requires of another), and the checks. host/config_schema.py applies them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any

import ml_collections

KINDS = ("int", "number", "str", "bool", "ints", "strs", "any", "block")


class _NoDefault:
    """The default of a field that has none: a config must set it (or the family reads it only when present)."""

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT = _NoDefault()


@dataclasses.dataclass(frozen=True)
class Field:
    """One config field: `kind` (int | number | str | bool | ints: a tuple of ints | strs: a str or a tuple of them |
    any: checked by `check` | block: a sub-block read by its own code), range [low, high] (open ends with low_open /
    high_open), `choices` for strings, whether None is allowed (`optional`) and whether a tuple sweeps it."""

    kind: str
    doc: str
    # The two every declaration names come first, positionally (`Field("int", "doc", low=1)`); the rest by keyword.
    _: dataclasses.KW_ONLY
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
    # The value an absent field takes (None for an optional field): the only place a field's default is written.
    default: Any = NO_DEFAULT

    def __post_init__(self):
        assert self.kind in KINDS, self.kind
        if self.optional and self.default is NO_DEFAULT:
            object.__setattr__(self, "default", None)  # an optional field left out is unset

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT


def integer(doc: str, low: int | None = None, **options) -> Field:
    return Field("int", doc, low=low, **options)


def number(doc: str, low: float | None = None, high: float | None = None, **options) -> Field:
    return Field("number", doc, low=low, high=high, **options)


def choice(doc: str, choices: tuple, **options) -> Field:
    return Field("str", doc, choices=tuple(choices), **options)


def text(doc: str, **options) -> Field:
    return Field("str", doc, **options)


def flag(doc: str, default: Any = NO_DEFAULT, **options) -> Field:
    return Field("bool", doc, default=default, **options)


def _bound_text(bound: float) -> str:
    """An integer bound in full (4294967295, not 4.29497e+09); other numbers in %g."""
    return str(bound) if _is_int(bound) else f"{bound:g}"


def _range_text(field: Field) -> str:
    parts = []
    if field.low is not None:
        parts.append(f"{'>' if field.low_open else '>='} {_bound_text(field.low)}")
    if field.high is not None:
        parts.append(f"{'<' if field.high_open else '<='} {_bound_text(field.high)}")
    return " and ".join(parts)


def describe(field: Field) -> str:
    """What the field accepts, in words (the validator's error says the same)."""
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


def _wrong_type(field: Field, value: Any) -> str | None:
    """What a value of the wrong type is, in words ("not a number"), or None when only its range is wrong."""
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if field.kind == "number" and not number and not (isinstance(value, str) and field.number_choices):
        return "not a number"
    if field.kind == "int" and not _is_int(value):
        return "not an integer"
    if field.kind == "bool" and not isinstance(value, bool):
        return "not True or False"
    return None


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
            raise ValueError(f"config.{path}: must be {describe(field)}, got None")
        return
    sweep = field.sweepable and isinstance(value, (tuple, list)) and field.kind not in ("ints", "strs", "any")
    values = list(value) if sweep else [value]
    if sweep and not values:
        raise ValueError(f"config.{path}: an empty tuple sweeps nothing; give at least one value")
    for item in values:
        if field.kind == "str" and field.choices and isinstance(item, str) and item not in field.choices:
            raise ValueError(f"config.{path}: unknown {field.noun} {item!r}; allowed: {', '.join(field.choices)}")
        if not _one_ok(field, item):
            wrong_type = _wrong_type(field, item)
            got = f"{item!r} is {wrong_type}; " if wrong_type else ""
            raise ValueError(f"config.{path}: {got}must be {describe(field)}, got {item!r}")
    if field.check is not None:
        field.check(value)


class _Copy:
    """The implied value of `same_setting`: the value of the rule's `when` field."""

    def __repr__(self) -> str:
        return "COPY"


COPY = _Copy()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rule:
    """A cross-field rule of one static group, declared beside the fields it ties: while the field `when` holds one of
    `values` (any set value when `values` is empty), the field `then` takes `implied` (implies, same_setting), must
    hold one of `allowed` (requires), must be set (needs) or must not exceed it (at_most: `bound` "<=" or "<").
    Paths are full dotted paths ("model.fit_method").

    An implied field left at its declared default takes the implied value; set to anything else it is a conflict.
    `message` is the one-line error; "{got}" and "{when}" in it are the values of `then` and `when`.
    """

    when: str
    values: tuple
    then: str
    message: str
    allowed: tuple = ()
    implied: Any = NO_DEFAULT
    needs_value: bool = False
    bound: str | None = None


def implies(when: str, values: tuple, then: str, value: Any, message: str) -> Rule:
    """While `when` is one of `values`, `then` takes `value` (an explicit other value is the error `message`)."""
    return Rule(when=when, values=tuple(values), then=then, implied=value, message=message)


def requires(when: str, values: tuple, then: str, allowed: tuple, message: str) -> Rule:
    """While `when` is one of `values`, `then` (each value of a sweep) must be one of `allowed` (else `message`)."""
    return Rule(when=when, values=tuple(values), then=then, allowed=tuple(allowed), message=message)


def needs(when: str, values: tuple, then: str, message: str) -> Rule:
    """While `when` is one of `values`, `then` must be set (not None)."""
    return Rule(when=when, values=tuple(values), then=then, needs_value=True, message=message)


def at_most(field: str, limit: str, message: str, strict: bool = False) -> Rule:
    """While `field` is set, its value (every value of a tuple) is <= the value of `limit` (< when strict)."""
    return Rule(when=field, values=(), then=limit, bound="<" if strict else "<=", message=message)


def same_setting(alias: str, field: str, message: str) -> Rule:
    """`alias` is another name of `field`: setting it sets `field` (setting both to different values is `message`)."""
    return Rule(when=alias, values=(), then=field, implied=COPY, message=message)


def describe_rule(rule: Rule) -> str:
    """One line: while <when> is <values>, <then> takes / must be / must be set."""
    when = f"config.{rule.when} is set" if not rule.values else f"config.{rule.when} in {list(rule.values)}"
    if rule.implied is COPY:
        return f"while {when}: config.{rule.then} takes its value"
    if rule.implied is not NO_DEFAULT:
        return f"while {when}: config.{rule.then} = {rule.implied!r}"
    if rule.needs_value:
        return f"while {when}: config.{rule.then} must be set"
    if rule.bound is not None:
        return f"config.{rule.when} {rule.bound} config.{rule.then}"
    return f"while {when}: config.{rule.then} in {list(rule.allowed)}"


def _node_and_leaf(config: ml_collections.ConfigDict, path: str) -> tuple[Any, str]:
    """The ConfigDict holding the dotted `path` (None when a parent block is absent) and its key."""
    *parents, leaf = path.split(".")
    node = config
    for part in parents:
        node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
    return node, leaf


def _read(config: ml_collections.ConfigDict, path: str, declarations: dict[str, Field]) -> Any:
    """The value at `path`, or its declared default when absent (None without one)."""
    node, leaf = _node_and_leaf(config, path)
    if isinstance(node, ml_collections.ConfigDict) and leaf in node:
        return node[leaf]
    declared = declarations.get(path)
    return declared.default if declared is not None and declared.has_default else None


def _allowed(value: Any, allowed: tuple) -> bool:
    """`value` (every value of a sweep's tuple) is among `allowed`."""
    return all(item in allowed for item in value) if isinstance(value, (tuple, list)) else value in allowed


def _within(values: Any, limits: Any, strict: bool) -> bool:
    """max(values) <= min(limits) (< when strict): a sweep's every value against every limit."""
    largest = max(values) if isinstance(values, (tuple, list)) else values
    smallest = min(limits) if isinstance(limits, (tuple, list)) else limits
    return largest < smallest if strict else largest <= smallest


def resolve(
    config: ml_collections.ConfigDict,
    declarations: dict[str, Field],
    rules: tuple[Rule, ...] = (),
) -> ml_collections.ConfigDict:
    """A copy of one static group's config with every absent declared field that has a default at it (in the blocks
    the config has: an absent curation block stays absent) and the values `rules` imply; a rule that fails raises its
    one-line ValueError. Idempotent. `declarations` and rule paths are full dotted paths.
    """
    config = ml_collections.ConfigDict(config.to_dict())
    for path, field in declarations.items():
        node, leaf = _node_and_leaf(config, path)
        if field.has_default and isinstance(node, ml_collections.ConfigDict) and leaf not in node:
            with node.ignore_type():
                node[leaf] = field.default
    for rule in rules:
        when = _read(config, rule.when, declarations)
        if when is None or (rule.values and when not in rule.values):
            continue
        value = _read(config, rule.then, declarations)
        if rule.implied is not NO_DEFAULT:
            implied = when if rule.implied is COPY else rule.implied
            declared = declarations.get(rule.then)
            default = declared.default if declared is not None else None
            if value != implied and value != default:
                raise ValueError(rule.message.format(got=repr(value), when=repr(when)))
            target, leaf = _node_and_leaf(config, rule.then)
            with target.ignore_type():
                target[leaf] = implied
        elif rule.bound is not None:
            if value is not None and not _within(when, value, rule.bound == "<"):
                raise ValueError(rule.message.format(got=repr(value), when=repr(when)))
        elif (rule.needs_value and value is None) or (rule.allowed and not _allowed(value, rule.allowed)):
            raise ValueError(rule.message.format(got=repr(value), when=repr(when)))
    return config


# The inactive curation block experiments/configs/common.py writes (every curation field at its declared default, as
# data here because models/ cannot import the core's table; tests/test_settings.py pins the two): a config holding
# exactly this runs as one without a block (base.make_model and sweep.expand normalize the user's config with
# without_unset; a group's resolved config is never normalized again).
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
