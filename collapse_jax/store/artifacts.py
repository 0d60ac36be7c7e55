"""Per-generation artifacts: non-scalar outputs of `model.evaluate` (generated texts, sample images) kept on disk.

<workdir>/artifacts/group_<i>/generation_<g>.npz holds, per artifact name, an array [chains, ...] of that generation;
each chunk writes only its own recorded generations (config.record_every): cost per chunk never grows with the run.
"""

from __future__ import annotations

import json
import os

import numpy as np

from collapse_jax.store import workdir_io


def _directory(workdir: str, group_index: int) -> str:
    return os.path.join(workdir, "artifacts", f"group_{group_index:03d}")


def write(workdir: str, group_index: int, generations: list[int], values: dict[str, np.ndarray]) -> None:
    """Save artifacts [chains, len(generations), ...] one file per generation (atomic: a kill leaves no half file)."""
    directory = _directory(workdir, group_index)
    os.makedirs(directory, exist_ok=True)
    for offset, generation in enumerate(generations):
        arrays = {name: value[:, offset] for name, value in values.items()}
        path = os.path.join(directory, f"generation_{generation:06d}.npz")
        workdir_io.atomic_write(path, lambda handle, arrays=arrays: np.savez(handle, **arrays))


def load(workdir: str, name: str, generation: int) -> tuple[np.ndarray, np.ndarray]:
    """(chain ids [chains], artifact [chains, ...]) of one generation across all static groups of a run."""
    with open(os.path.join(workdir, workdir_io.RUN_FILE)) as handle:
        record = json.load(handle)
    ids, values = [], []
    for group in record["groups"]:
        path = os.path.join(_directory(workdir, group["index"]), f"generation_{generation:06d}.npz")
        if os.path.exists(path):
            with np.load(path) as data:
                if name in data.files:
                    ids.append(np.asarray(group["chain_ids"]))
                    values.append(data[name])
    if not values:
        raise FileNotFoundError(f"artifact {name!r} of generation {generation} is not in {workdir}/artifacts")
    return np.concatenate(ids), np.concatenate(values)
