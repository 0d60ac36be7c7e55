"""What a run would do, without running it: every setting with its default and doc, the static groups with their
chains and compiles, and the memory and disk each needs (`python -m experiments.main ... --dry_run`)."""

from __future__ import annotations

import jax
import ml_collections

from collapse_jax.core import engine as engine_module
from collapse_jax.host import config_schema, devices, runner, sweep
from collapse_jax.models import fields
from collapse_jax.store import metric_log

FLOAT_BYTES = 4  # metrics are stored as float32


def _bytes(count: float) -> str:
    """A byte count in the largest unit that keeps it >= 1 (B, KiB, MiB, GiB)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024


def settings_lines(config: ml_collections.ConfigDict) -> list[str]:
    """One line per declared field: its value (or default when absent), whether it differs from the default, its
    doc; absent fields without a default are off and listed as such."""
    declared, _ = config_schema.declared_fields(config.model.get("name"))
    values = config_schema.leaves(config)
    lines = []
    for path, field in declared.items():
        if path in values:
            value = values[path]
            note = (
                ""
                if field.has_default and value == field.default
                else "  (set; default " + (repr(field.default) if field.has_default else "none") + ")"
            )
        elif field.has_default:
            value, note = field.default, "  (default)"
        else:
            value, note = None, "  (absent: off)"
        lines.append(f"config.{path} = {value!r}{note}\n    {field.doc}; {fields.describe(field)}")
    for path in sorted(set(values) - set(declared)):  # a family without config_fields checks its own block
        lines.append(f"config.{path} = {values[path]!r}  (undeclared: the family checks it)")
    return lines


def group_lines(group: sweep.Group) -> list[str]:
    """The group's chains, compiles, device memory, host memory per chunk and disk."""
    engine = runner.build_engine(group)
    config = group.config
    chains = len(group.chain_ids)
    padded = len(runner.padded_knobs(group.knobs, engine.chain_block * jax.device_count())["seed"])
    one_chain = {name: value[0] for name, value in runner.padded_knobs(group.knobs, 1).items()}
    per_chain = engine.bytes_per_chain(one_chain)
    state = jax.eval_shape(lambda k: engine.init_chain(k)[0], one_chain)
    state_bytes = engine_module.tree_nbytes(state)
    metrics = len(engine.model.metric_names) + len(engine.bookkeeping_metrics) + 1  # + failed
    kept = len(metric_log.expected_generations(config.num_generations, config.record_every))
    blocks = padded // engine.chain_block
    labels = ", ".join(f"{name}={value}" for name, value in group.labels.items()) or "one group"
    return [
        f"group {group.index} ({labels}): {chains} chains ({padded} padded), {blocks} block(s) of "
        f"{engine.chain_block} on {jax.device_count()} device(s); 2 compiles (init, chunk)",
        f"    device memory ~{_bytes(per_chain * engine.chain_block)} per block in flight "
        f"({_bytes(per_chain)} per chain: state, real data, one generation's transients)",
        f"    host memory per chunk of {engine.chunk_generations}: "
        f"{_bytes(padded * engine.chunk_generations * metrics * FLOAT_BYTES)} of metrics",
        f"    disk: {_bytes(chains * kept * metrics * FLOAT_BYTES)} of metrics ({metrics} metrics x {kept} recorded "
        f"generations), {_bytes(padded * state_bytes)} per checkpoint x {config.max_checkpoints_to_keep} kept, "
        + _cadence(config.checkpoint_every),
    ]


def _cadence(checkpoint_every) -> str:
    """When the group checkpoints, in words."""
    every = devices.checkpoint_every_setting(checkpoint_every)
    if every == devices.AUTO_BLOCK:
        return f"a checkpoint every ~{devices.CHECKPOINT_SECONDS:.0f} s of wall time (at chunk ends)"
    return f"a checkpoint every {every} generation(s) (rounded up to a chunk)"


def describe(config: ml_collections.ConfigDict) -> str:
    """The dry run's text: settings, then each static group (the sweep is expanded and every group's parts are built,
    so a config that would fail fails here; the LM and VAE read or build their cached base models to do so)."""
    groups = sweep.expand(config)
    lines = ["Settings (declared fields; config_schema.py, a family's config_fields, the curation table):"]
    lines += settings_lines(config)
    total = sum(len(group.chain_ids) for group in groups)
    lines += ["", f"{len(groups)} static group(s), {total} chains, {2 * len(groups)} compiles:"]
    for group in groups:
        lines += group_lines(group)
    lines.append(
        f"devices: {jax.device_count()} x {jax.devices()[0].platform}; block budget "
        f"{_bytes(devices.block_memory_bytes())} per device"
    )
    return "\n".join(lines)
