"""Orbax checkpoints of one static group: chain state + metrics so far + a JSON record (generation, config).

Saves are asynchronous (they overlap the next chunk); a checkpoint that fails to restore is moved aside, not deleted.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging


class GroupCheckpoints:
    """CheckpointManager under <workdir>/checkpoints/group_<i>, stepped by generation."""

    def __init__(self, directory: str, max_to_keep: int, keep_period: int | None):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, keep_period=keep_period, enable_async_checkpointing=True, create=True
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        """Generations with a finished checkpoint, oldest first."""
        return sorted(self.manager.all_steps())

    def save(self, generation: int, state: Any, metrics: dict[str, np.ndarray], record: dict) -> None:
        """Start an asynchronous save of everything needed to continue after `generation`."""
        args = ocp.args.Composite(
            chain_state=ocp.args.StandardSave(state),
            metric_history=ocp.args.StandardSave(metrics),
            record=ocp.args.JsonSave(record),
        )
        self.manager.save(generation, args=args, force=True)

    def read_record(self, generation: int) -> dict:
        """The JSON record (config, generation, shapes) of one checkpoint."""
        return self.manager.restore(generation, args=ocp.args.Composite(record=ocp.args.JsonRestore()))["record"]

    def restore(self, generation: int, abstract_state: Any, abstract_metrics: Any) -> tuple[Any, dict, dict]:
        """State, metrics and record of one checkpoint, shaped like the abstract trees."""
        args = ocp.args.Composite(
            chain_state=ocp.args.StandardRestore(abstract_state),
            metric_history=ocp.args.StandardRestore(abstract_metrics),
            record=ocp.args.JsonRestore(),
        )
        restored = self.manager.restore(generation, args=args)
        return restored["chain_state"], restored["metric_history"], restored["record"]

    def restore_latest_good(self, restore_fn) -> tuple[int, Any] | None:
        """Newest checkpoint `restore_fn` accepts; unreadable ones are moved aside to corrupt_* with a warning."""
        for generation in reversed(self.steps()):
            try:
                return generation, restore_fn(generation)
            except Exception as error:  # any failure to read means this step cannot be trusted
                aside = os.path.join(
                    os.path.dirname(self.directory), f"corrupt_{os.path.basename(self.directory)}_{generation}"
                )
                logging.warning(
                    "Checkpoint at generation %d in %s is unreadable (%s); moved to %s, trying an older one.",
                    generation,
                    self.directory,
                    str(error).splitlines()[0][:200],
                    aside,
                )
                self.manager.wait_until_finished()
                shutil.move(os.path.join(self.directory, str(generation)), aside)
                self.manager.reload()
        return None

    def wait(self) -> None:
        """Block until pending asynchronous saves are committed."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def abstract(tree: Any) -> Any:
    """ShapeDtypeStructs of a tree (the restore target)."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype), tree
    )
