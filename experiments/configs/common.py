"""The run fields every experiment config shares; a config starts here and sets only what is its own.

`get_config()` returns every shared field at its declared default: seeds and sizes, the regime basics, chunking, the
chain block, checkpoints, plots, TensorBoard, an inactive `curation` block (each operator's fields, None: unset) and
the `report` block, so every config accepts the same `--config.<field>=...` overrides (e.g.
`--config.curation.name=likelihood_filter`). Each field's type, range, default and one-line doc are declared once, in
collapse_jax/host/config_schema.py (a curation operator's own fields: its entry of the table in
collapse_jax/core/curation.py); `python -m experiments.settings` lists them. `finish(config)` lets every sweepable or
optional field take a single value or a tuple, in Python as on the command line. Not a config itself (no `model`
family): experiments/configs/gaussian.py is the smallest complete one.
"""

import ml_collections

from collapse_jax.host import config_schema


def get_config() -> ml_collections.ConfigDict:
    return finish(config_schema.shared_config())


def finish(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Let every sweepable, optional or multi-typed field hold any value (a single value or a tuple); returns config.

    ml_collections locks a field to the type of its first value, so `config.regime.name = "accumulate"` after a tuple
    raised a TypeError, and `--config.model.sampling_bias='(1.0, 0.8)'` could not override a float. A FieldReference
    of type `object` accepts either; config_flags parses its overrides as Python literals (a bare word stays a string).
    """
    fields, _ = config_schema.declared_fields(config.model.get("name"))
    for path, field in fields.items():
        *parents, leaf = path.split(".")
        node = config
        for part in parents:
            node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
        if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
            continue
        flexible = field.sweepable or field.optional or field.kind in ("any", "strs")
        if flexible and node.get_type(leaf) is not object:
            value = node[leaf]
            with node.ignore_type():
                node[leaf] = ml_collections.FieldReference(value, field_type=object)
    return config
