"""Declared settings: defaults fill absent fields once, rules imply or require values, the listing shows them all."""

import ml_collections
import pytest

from collapse_jax.host import config_schema
from collapse_jax.models import fields
from experiments import settings
from experiments.configs import common
from experiments.configs import gaussian as gaussian_config

DECLARED = {
    "block.mode": fields.choice("a mode", ("plain", "fancy"), default="plain"),
    "block.level": fields.integer("a level", low=1, default=3),
    "block.alias": fields.integer("another name of level", low=1, optional=True, default=None),
    "block.target": fields.number("a target", optional=True, default=None),
    "block.engine": fields.choice("an engine", ("slow", "fast"), default="slow"),
}
RULES = (
    fields.implies("block.mode", ("fancy",), "block.engine", "fast", "config.block.engine: fancy runs fast, got {got}"),
    fields.requires("block.mode", ("fancy",), "block.level", (1, 2), "config.block.level: fancy needs 1 or 2"),
    fields.needs("block.mode", ("fancy",), "block.target", "config.block.target: fancy needs it"),
    fields.same_setting("block.alias", "block.level", "config.block.alias: is level; got {when} and {got}"),
)


def resolved(**values) -> ml_collections.ConfigDict:
    return fields.resolve(ml_collections.ConfigDict({"block": values}), DECLARED, RULES)


def test_absent_fields_take_their_declared_default_and_resolving_twice_changes_nothing():
    once = resolved()
    assert once.block.to_dict() == {"mode": "plain", "level": 3, "alias": None, "target": None, "engine": "slow"}
    assert fields.resolve(once, DECLARED, RULES).to_dict() == once.to_dict()


def test_an_absent_block_stays_absent():
    assert "block" not in fields.resolve(ml_collections.ConfigDict({"other": 1}), DECLARED, RULES)


def test_an_implied_field_at_its_default_takes_the_implied_value_and_an_explicit_other_value_is_refused():
    assert resolved(mode="fancy", level=2, target=0.5).block.engine == "fast"
    # An explicit value equal to the default reads as unset (a config may write every default); any other conflicts.
    declared = {**DECLARED, "block.engine": fields.choice("an engine", ("slow", "fast", "none"), default="none")}
    config = ml_collections.ConfigDict({"block": {"mode": "fancy", "level": 2, "target": 0.5, "engine": "slow"}})
    with pytest.raises(ValueError, match="^config.block.engine: fancy runs fast, got 'slow'$"):
        fields.resolve(config, declared, RULES)


def test_requirements_and_needed_fields_are_one_line_errors_naming_the_field():
    with pytest.raises(ValueError, match="^config.block.level: fancy needs 1 or 2$"):
        resolved(mode="fancy", target=0.5)  # level 3 by default
    with pytest.raises(ValueError, match="^config.block.target: fancy needs it$"):
        resolved(mode="fancy", level=1)


def test_two_names_of_one_setting_set_each_other_and_refuse_to_disagree():
    assert resolved(alias=7).block.level == 7
    assert resolved(alias=7, level=7).block.level == 7
    with pytest.raises(ValueError, match="^config.block.alias: is level; got 7 and 5$"):
        resolved(alias=7, level=5)


def test_common_config_is_the_shared_declarations_at_their_defaults():
    declared = config_schema.shared_fields()
    for path, value in config_schema.leaves(common.get_config()).items():
        assert declared[path].has_default and declared[path].default == value, path


def test_the_settings_listing_names_every_declared_field_with_its_doc_and_the_rules():
    listing = settings.describe("gaussian")
    declared, _ = config_schema.declared_fields("gaussian")
    for path, field in declared.items():
        assert f"config.{path}: " in listing and field.doc in listing, path
    assert "config.model.population_fit in [True]: config.model.sampling = 'statistics'" in listing


def test_a_group_is_resolved_with_the_family_defaults_and_rules():
    config = gaussian_config.get_config()
    config.regime.name = "replace"
    config.model.population_fit = True
    group = config_schema.resolve(config)
    assert group.model.sampling == "statistics" and group.model.l2_log_scale == 0.0 and group.model.truth is None


def test_the_inactive_curation_block_is_every_curation_field_at_its_declared_default():
    """models/ cannot import the core's curation table, so fields.py keeps the inactive block as data: pinned here."""
    declared = {
        path.split(".", 1)[1]: field.default
        for path, field in config_schema.shared_fields().items()
        if path.startswith("curation.") and field.default is not None and field.has_default
    }
    assert declared == fields.INACTIVE_CURATION


@pytest.mark.parametrize(
    "value, kind",
    [("abc", "not a number"), (True, "not a number"), ((0.5, "x"), "not a number")],
)
def test_a_value_of_the_wrong_type_is_named_as_such_not_as_out_of_range(value, kind):
    config = gaussian_config.get_config()
    config.regime.real_fraction = value
    with pytest.raises(
        ValueError, match=rf"^config\.regime\.real_fraction: '?\w+'? is {kind}; must be a finite number"
    ):
        config_schema.validate(config)
    config.regime.real_fraction = 2.0  # the right type out of range: the range alone
    with pytest.raises(ValueError, match=r"^config\.regime\.real_fraction: must be a finite number >= 0 and <= 1"):
        config_schema.validate(config)
