"""A run's workdir on disk: the exclusive lock, run.json (config + which chain is which), append-only metric files.

A second run on a held workdir, or a resume whose config changes what was computed, is refused before any write.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import ml_collections

# Fields a resume may change: they decide how far and how the run goes, not what any generation computes.
RESUMABLE_FIELDS = (
    "num_generations",
    "chunk_generations",
    "checkpoint_every",
    "generator",
    "cpu_devices",
    "max_checkpoints_to_keep",
    "keep_period",
    "make_plots",
    "tensorboard",
)
# Config blocks that only shape the report (figures, breakdown tolerance): any change is fine on a resume.
RESUMABLE_BLOCKS = ("report.",)
RUN_FILE = "run.json"
# run.json's key for the family's ErrorSources ({results column: dataclasses.asdict(ErrorSwitch)}), recorded with the
# config so a report reads the declarations without importing the family (and jax with it).
ERROR_SOURCE_SWITCHES = "error_source_switches"
# Exit status of a run stopped by a preemption signal after checkpointing (EX_TEMPFAIL): launchers requeue on it.
PREEMPTED_EXIT_CODE = 75


class OutOfDiskSpace(OSError):
    """A write found the disk full: the message names the path and the bytes the write needed (one line)."""

    def __init__(self, path: str, needed: int | None):
        directory = os.path.dirname(os.path.abspath(path))
        free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize if os.path.isdir(directory) else 0
        size = "" if needed is None else f"{needed} bytes needed, "  # None: the write's size is not known (fsync)
        super().__init__(
            errno.ENOSPC,
            f"out of disk space writing {path}: {size}{free} free; free space and rerun the same command to resume "
            "from the latest checkpoint",
        )
        self.path, self.needed = path, needed

    def __str__(self) -> str:
        return self.strerror


def is_out_of_space(error: BaseException | None) -> bool:
    """True when `error` or anything it was raised from is an ENOSPC OSError (Orbax wraps its I/O errors)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        error = error.__cause__ or error.__context__
    return False


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        flat = {}
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: list(tree) if isinstance(tree, tuple) else tree}


def config_record(config: ml_collections.ConfigDict) -> dict:
    """The config as plain JSON-able data."""
    return json.loads(config.to_json())


def check_resumable(
    saved: dict, config: ml_collections.ConfigDict, workdir: str, defaults: dict[str, Any] | None = None
) -> None:
    """Refuse a config that changes anything already computed (extending num_generations is fine).

    `defaults` (dotted path -> value, the declared defaults) is what a field absent from either side means: a run
    written before a field was declared computed with its default.
    """
    defaults = json.loads(json.dumps(defaults or {}))  # tuples as the lists run.json holds
    old, new = _flatten(saved), _flatten(config_record(config))
    for field in sorted(set(old) | set(new)):
        if field in RESUMABLE_FIELDS or field.startswith(RESUMABLE_BLOCKS):
            continue
        default = defaults.get(field, "<absent>")
        before, after = old.get(field, default), new.get(field, default)
        if field == "chain_block":  # a command-line override of the "auto" (str) field arrives as digits
            before, after = str(before), str(after)
        # One value and a 1-tuple of it are the same setting (a flexible field's override arrives as the value).
        before, after = (v[0] if isinstance(v, list) and len(v) == 1 else v for v in (before, after))
        # A field added after the run was written, at its inactive None, is the setting the old run had.
        before, after = (None if v == "<absent>" else v for v in (before, after))
        if before != after:
            raise ValueError(
                f"config.{field}: {new.get(field, '<absent>')!r} differs from {old.get(field, '<absent>')!r} of the "
                "run "
                f"already in {workdir}; resume with the same config or use a new --workdir"
            )
    if config.num_generations < saved["num_generations"]:
        raise ValueError(
            f"config.num_generations: {config.num_generations} is below the {saved['num_generations']} of "
            f"the run in {workdir}; a resume may only extend it"
        )


def atomic_write(path: str, write) -> None:
    """Write to a temporary file, fsync, rename: a kill never leaves half a file, a full disk leaves no temporary."""
    buffer = io.BytesIO()
    write(buffer)  # in memory first, so a full disk can be reported with the bytes the file needs
    temporary = f"{path}.tmp.{os.getpid()}"
    try:
        with open(temporary, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        if is_out_of_space(error):
            raise OutOfDiskSpace(path, buffer.getbuffer().nbytes) from error
        raise


def write_json(path: str, data: dict) -> None:
    """Write JSON atomically (a kill never leaves half a file)."""
    atomic_write(path, lambda handle: handle.write(json.dumps(data, indent=1).encode()))


def run_record(
    config: ml_collections.ConfigDict, groups: list, resumes: list | None = None, switches: dict | None = None
) -> dict:
    """run.json: the config; per static group, its labels, chain ids and knobs; every resume so far (group,
    the checkpoint's generation, the generation the run continued to), oldest first; and the family's error-source
    switches ({results column: ErrorSwitch fields}), so a report reads them without importing the family."""
    return {
        "config": config_record(config),
        ERROR_SOURCE_SWITCHES: {name: dataclasses.asdict(switch) for name, switch in (switches or {}).items()},
        "resumes": list(resumes or []),
        "groups": [
            {
                "index": g.index,
                "labels": g.labels,
                "chain_ids": g.chain_ids.tolist(),
                "knobs": {name: value.tolist() for name, value in g.knobs.items()},
            }
            for g in groups
        ],
    }


@contextlib.contextmanager
def claim(
    workdir: str,
    config: ml_collections.ConfigDict,
    groups: list,
    defaults: dict[str, Any] | None = None,
    switches: dict | None = None,
) -> Iterator[None]:
    """Hold the workdir's lock for the run; check a resume's config (absent fields read as `defaults`); write
    run.json."""
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(f"--workdir: {workdir} is a file, not a directory")
    os.makedirs(workdir, exist_ok=True)
    lock_path = os.path.join(workdir, ".lock")
    handle = open(lock_path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise ValueError(
            f"--workdir: {workdir} is held by a live run (pid {holder}); wait for it or use another"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        run_path = os.path.join(workdir, RUN_FILE)
        resumes = []
        if os.path.exists(run_path):
            with open(run_path) as saved:
                previous = json.load(saved)
            check_resumable(previous["config"], config, workdir, defaults)
            resumes = previous.get("resumes", [])
        write_json(run_path, run_record(config, groups, resumes, switches))
        os.makedirs(os.path.join(workdir, "metrics"), exist_ok=True)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def record_resume(workdir: str, group_index: int, generation: int, num_generations: int) -> None:
    """Append one resume to run.json: group `group_index` continued from its checkpoint at `generation` and computes
    generations generation + 1 .. num_generations only."""
    run_path = os.path.join(workdir, RUN_FILE)
    with open(run_path) as saved:
        record = json.load(saved)
    record.setdefault("resumes", []).append(
        {"group": group_index, "from_generation": generation, "to_generation": num_generations}
    )
    write_json(run_path, record)


def metrics_path(workdir: str, group_index: int) -> str:
    """The metric file of runs written before append-only metrics: [chains, num_generations + 1] per metric."""
    return os.path.join(workdir, "metrics", f"group_{group_index:03d}.npz")
