"""Orbax checkpoints of one static group: chain state + a JSON record (generation, config); the metric history is
the append-only metric files. Saves are asynchronous; a checkpoint that fails to restore is moved aside, not deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from collapse_jax.store import workdir_io


class GroupCheckpoints:
    """CheckpointManager under <workdir>/checkpoints/group_<i>, stepped by generation."""

    def __init__(self, directory: str, max_to_keep: int, keep_period: int | None):
        self.directory = os.path.abspath(directory)
        # cleanup_tmp_directories: a save a full disk or a kill cut short leaves a temporary folder; the next run
        # (the resume) removes it, and the committed checkpoints beside it are untouched.
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            keep_period=keep_period,
            enable_async_checkpointing=True,
            create=True,
            cleanup_tmp_directories=True,
            # Checkpoints past max_to_keep are deleted on Orbax's thread: inline, the delete held up the next save
            # (a save every 10 generations of 10^4 Gaussian chains: 42 -> 26 ms per save, measured side by side).
            enable_background_delete=True,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        """Generations with a finished checkpoint, oldest first."""
        return sorted(self.manager.all_steps())

    def save(self, generation: int, state: Any, record: dict) -> None:
        """Start an asynchronous save of everything needed to continue after `generation`."""
        args = ocp.args.Composite(chain_state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record))
        needed = sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(state))
        with _out_of_space_as_one_line(self.directory, needed):
            self.manager.save(generation, args=args, force=True)

    def read_record(self, generation: int) -> dict:
        """The JSON record (config, generation, shapes) of one checkpoint."""
        return self.manager.restore(generation, args=ocp.args.Composite(record=ocp.args.JsonRestore()))["record"]

    def restore(self, generation: int, abstract_state: Any) -> tuple[Any, dict]:
        """State and record of one checkpoint (older checkpoints' metric_history item is left unread)."""
        args = ocp.args.Composite(chain_state=ocp.args.StandardRestore(abstract_state), record=ocp.args.JsonRestore())
        restored = self.manager.restore(generation, args=args)
        return restored["chain_state"], restored["record"]

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
        with _out_of_space_as_one_line(self.directory, None):
            self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


@contextlib.contextmanager
def _out_of_space_as_one_line(directory: str, needed: int | None) -> Iterator[None]:
    """A full disk during a save (raised now, or by the asynchronous save before it) becomes OutOfDiskSpace."""
    try:
        yield
    except workdir_io.OutOfDiskSpace:
        raise
    except Exception as error:
        if workdir_io.is_out_of_space(error):
            raise workdir_io.OutOfDiskSpace(directory, needed) from error
        raise


def abstract(tree: Any) -> Any:
    """ShapeDtypeStructs of a tree (the restore target)."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype), tree
    )
