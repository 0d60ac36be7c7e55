"""List every declared setting (path, what it accepts, default, doc) and the cross-field rules, from the declarations.

python -m experiments.settings [--model=gaussian]   (the shared fields, plus one family's config.model fields)
"""

from absl import app, flags

from collapse_jax.host import config_schema
from collapse_jax.models import base, fields

_MODEL = flags.DEFINE_string("model", None, "A family (built-in name or module path) whose fields are listed too.")


def describe(model_name: str | None) -> str:
    """The settings table as text: one line per field, then one per rule."""
    declared, _ = config_schema.declared_fields(model_name)
    lines = []
    for path, field in declared.items():
        default = f"  [default {field.default!r}]" if field.has_default else ""
        lines.append(f"config.{path}: {fields.describe(field)}{default}\n    {field.doc}")
    rules = config_schema.shared_rules() + (base.family_rules(model_name) if model_name else ())
    if rules:
        lines.append("\nRules (checked per static group):")
        lines.extend(f"  {fields.describe_rule(rule)}" for rule in rules)
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    print(describe(_MODEL.value))


if __name__ == "__main__":
    app.run(main)
