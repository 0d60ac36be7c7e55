"""The registry that finds a family by name (a built-in module here, or any importable module path).

The contract itself (Protocols, `supports`, FamilySettings) lives in `contract`; it is re-exported here.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import sys
import types
from typing import Any

from collapse_jax.models import fields
from collapse_jax.models.contract import (  # noqa: F401  (re-exported: the public contract)
    CAPABILITIES,
    SHARED_MODEL_FIELDS,
    ArtifactOutputs,
    ConfigFields,
    ConfigRules,
    EvaluateUsesSamples,
    EventMetrics,
    FamilySettings,
    Knobs,
    LogLikelihood,
    Model,
    PyTree,
    StaticSweepFields,
    StatisticsSampler,
    SufficientStatistics,
    TruthSampler,
    Verifier,
    WatermarkDetector,
    WorkingBytes,
    family_settings,
    supports,
)
from collapse_jax.models.fields import without_unset

NOT_FAMILIES = ("base", "contract", "fields")


def available_models() -> list[str]:
    """Names of the built-in model families (public modules of this package other than the contract)."""
    package = importlib.import_module("collapse_jax.models")
    names = [info.name for info in pkgutil.iter_modules(package.__path__) if info.name not in NOT_FAMILIES]
    return sorted(name for name in names if not name.startswith("_"))


def family_module(name: Any) -> types.ModuleType:
    """The module of family `name`: `collapse_jax.models.<name>` for a built-in, else the importable module `name`."""
    builtins = available_models()
    if isinstance(name, str) and name in builtins:
        return importlib.import_module(f"collapse_jax.models.{name}")
    hint = (
        f"config.model.name: unknown model {name!r}; allowed: {', '.join(builtins)} (built-ins), or an importable "
        f"module path such as 'my_lab.families.poisson' whose make_model(config, settings) builds the family"
    )
    if not isinstance(name, str) or not name:
        raise ValueError(hint)
    try:
        module = importlib.import_module(name)
    except ImportError as error:
        # Only a failure to find the named module itself is an unknown name; a family's own broken import propagates.
        if not isinstance(error, ModuleNotFoundError) or not name.startswith(error.name or "\0"):
            raise
        raise ValueError(hint + ("" if "." not in name else f" (importing it failed: {error})")) from None
    if not callable(getattr(module, "make_model", None)):
        raise ValueError(f"config.model.name: module {name!r} has no make_model(config, settings)")
    return module


def family_class(name: Any) -> type | None:
    """The family's class (make_model's return annotation), for class attributes read before any model is built."""
    module = family_module(name)
    returned = module.make_model.__annotations__.get("return")
    if isinstance(returned, str):  # postponed annotations: the name is looked up where make_model is defined
        returned = getattr(sys.modules[module.make_model.__module__], returned, None)
    return returned if isinstance(returned, type) else None


def resolve(config: Any) -> Any:
    """One static group's config with the model block's declared defaults filled in and the family's rules applied
    (fields.resolve); the config every builder of the group reads."""
    return fields.resolve(config, model_declarations(config.model.name), family_rules(config.model.name))


def model_declarations(name: Any) -> dict[str, fields.Field]:
    """Every declared config.model field of family `name`, by dotted path: the engine's and the family's own."""
    family = family_class(name)
    own = family.config_fields if supports(family, ConfigFields) else {}
    return {f"model.{field}": declaration for field, declaration in {**SHARED_MODEL_FIELDS, **own}.items()}


def family_rules(name: Any) -> tuple[fields.Rule, ...]:
    """The family's cross-field rules (ConfigRules) with full paths: a family writes its paths like its config_fields,
    relative to config.model, and a path from the config's root with a leading "/" ("/regime.name")."""
    family = family_class(name)

    def full(path: str) -> str:
        return path[1:] if path.startswith("/") else f"model.{path}"

    rules = family.config_rules if supports(family, ConfigRules) else ()
    return tuple(dataclasses.replace(rule, when=full(rule.when), then=full(rule.then)) for rule in rules)


def make_model(config: Any, settings: FamilySettings | None = None) -> Model:
    """Build the family named by `config.model.name` from a config as a user writes it (tests, notebooks): the inactive
    curation block dropped and the model block resolved first, exactly as a run's groups are; engine settings are
    parsed here once unless given."""
    return build(resolve(without_unset(config)), settings)


def build(config: Any, settings: FamilySettings | None = None) -> Model:
    """Build the family from one static group's resolved config (sweep.expand's): nothing is normalized again, so a
    curation block the sweep kept stays, even when its resolved fields look like the inactive one."""
    module = family_module(config.model.name)
    return module.make_model(config, family_settings(config) if settings is None else settings)
