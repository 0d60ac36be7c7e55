"""Many runs into one: merge the shards of a sweep (or unrelated runs) into one Results and one long table.

Partial sweeps merge what exists; `sweep_status` says which shards and chain ids are missing or unfinished.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from typing import Any

import numpy as np

from collapse_jax.analysis import frames
from collapse_jax.analysis import results as results_lib
from collapse_jax.store import workdir_io

SHARD_FIELDS = ("num_shards", "shard_index")
MANIFEST = "sweep.json"  # ROOT/sweep.json, written by launch.sweep: the shards and chain-id ranges of a split sweep
# Written by the local backend and by the SLURM array script when a shard's run exits (any status).
EXIT_STATUS_FILE = "exit_status"


def load_manifest(root: str) -> dict | None:
    """ROOT/sweep.json, or None when ROOT is not a launched sweep."""
    path = os.path.join(root, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def read_exit_status(workdir: str) -> int | None:
    """The exit status a backend recorded for the shard's last run, or None."""
    path = os.path.join(workdir, EXIT_STATUS_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        text = handle.read().strip()
    return int(text) if text.lstrip("-").isdigit() else None


def run_workdirs(path: str) -> list[str]:
    """Run workdirs under `path`: itself if a run, a sweep's shards in order (started or not), or runs below it."""
    if os.path.isfile(os.path.join(path, workdir_io.RUN_FILE)):
        return [path]
    manifest = load_manifest(path)
    if manifest is not None:
        return [shard["workdir"] for shard in manifest["shards"]]
    found = []
    for parent, folders, files in os.walk(path):
        if workdir_io.RUN_FILE in files:
            found.append(parent)
            folders.clear()  # a run's own subfolders (checkpoints, metrics) hold no further runs
        folders.sort()
    return found


@dataclasses.dataclass
class Source:
    """One run directory to merge: `name` tells runs of different sweeps apart (shards of one sweep share it)."""

    name: str
    workdir: str


def finished_generations(run: results_lib.Results) -> int:
    """Last generation every chain of the run has finished (-1: none); `failed` is finite even for failed chains."""
    finished = np.flatnonzero(np.isfinite(run.metrics["failed"]).all(axis=0))
    return int(run.generations[finished[-1]]) if len(finished) else -1


def _fill(dtype: np.dtype, count: int) -> np.ndarray:
    """A knob column for runs that lack the knob: NaN for numbers, '' for labels."""
    return np.full(count, "" if dtype.kind in "US" else np.nan)


def merge(runs: list[results_lib.Results], names: list[str]) -> results_lib.Results:
    """One Results over every run (rows in the given order); a `source` knob appears when the runs come from several
    sweeps, so their knob groups stay apart. Shorter runs are NaN-padded to the longest horizon."""
    if not runs:
        raise ValueError("--workdir: no run with results was found")
    # Columns are the union of the runs' recorded generations (every generation unless config.record_every > 1).
    generations = np.unique(np.concatenate([run.generations for run in runs]))
    metric_names = list(dict.fromkeys(n for run in runs for n in run.metrics))
    knob_names = list(dict.fromkeys(n for run in runs for n in run.knobs))
    metrics, knobs = {}, {}
    for name in metric_names:
        parts = []
        for run in runs:
            part = np.full((run.num_chains, len(generations)), np.nan, np.float32)
            if name in run.metrics:
                part[:, np.searchsorted(generations, run.generations)] = run.metrics[name]
            parts.append(part)
        metrics[name] = np.concatenate(parts)
    for name in knob_names:
        dtype = next(run.knobs[name].dtype for run in runs if name in run.knobs)
        knobs[name] = np.concatenate([run.knobs.get(name, _fill(dtype, run.num_chains)) for run in runs])
    if len(set(names)) > 1:
        knobs["source"] = np.concatenate([np.full(run.num_chains, name) for run, name in zip(runs, names)])
    config = {k: v for k, v in runs[0].config.items() if k not in SHARD_FIELDS}
    config["num_generations"] = int(generations[-1])
    events = {
        name: np.concatenate([run.event_generation.get(name, np.full(run.num_chains, -1, np.int32)) for run in runs])
        for name in dict.fromkeys(n for run in runs for n in run.event_generation)
    }
    chain_ids = np.concatenate([run.chain_ids for run in runs])
    merged = results_lib.Results(metrics, knobs, config, chain_ids, np.asarray(generations), events)
    # The recorded switches hold for the merge when every run recorded the same (one family); else the family's class.
    recorded = [run.error_source_switches for run in runs]
    merged.error_source_switches = recorded[0] if all(r == recorded[0] for r in recorded) else None
    return merged


def load_sources(sources: list[Source]) -> tuple[results_lib.Results, dict[str, results_lib.Results]]:
    """Merged results of every source that has started, and each started source's own results by workdir."""
    loaded = {}
    for source in sources:
        if os.path.isfile(os.path.join(source.workdir, workdir_io.RUN_FILE)):
            loaded[source.workdir] = results_lib.load(source.workdir)
    started = [s for s in sources if s.workdir in loaded]
    return merge([loaded[s.workdir] for s in started], [s.name for s in started]), loaded


def sources(workdirs: list[str]) -> tuple[list[Source], list[tuple[str, dict | None]]]:
    """The runs under each of `workdirs` as Sources, and each workdir with its sweep manifest (None: not a sweep)."""
    found, manifests = [], []
    for workdir in workdirs:
        if not os.path.isdir(workdir):
            raise ValueError(f"--workdir: {workdir} is not a directory")
        runs = run_workdirs(workdir)
        name = os.path.basename(os.path.normpath(os.path.abspath(workdir)))
        # Runs found under one folder that is not a sweep are separate experiments: each is its own source.
        own = load_manifest(workdir) is not None or runs == [workdir]
        found += [Source(name if own else os.path.relpath(run, workdir), run) for run in runs]
        manifests.append((workdir, load_manifest(workdir)))
    return found, manifests


def load_workdirs(workdirs: list[str]) -> results_lib.Results:
    """One Results over every run under `workdirs` (sweep ROOTs, runs, folders of runs), merged as in the report.

    Several sweeps or unrelated runs get a `source` knob (their folder names), so their knob groups stay apart.
    """
    merged, _ = load_sources(sources(workdirs)[0])
    return merged


def long_table(run: results_lib.Results) -> dict[str, np.ndarray]:
    """Columns of the table with one row per chain x generation (Results.to_dataframe's, every metric, no row limit).

    Generations no chain has computed yet are left out, so partial runs give only real rows.
    """
    return frames.long_columns(run, max_rows=np.inf)


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        return None
    return pyarrow


def write_table(columns: dict[str, np.ndarray], stem: str, table_format: str = "auto") -> str:
    """Write `stem`.parquet (pyarrow; 'auto' when importable) or `stem`.csv; returns the path."""
    if table_format not in ("auto", "parquet", "csv"):
        raise ValueError(f"--format: must be auto, parquet or csv, got {table_format!r}")
    pyarrow = _pyarrow()
    if table_format == "parquet" and pyarrow is None:
        raise ValueError("--format: parquet needs pyarrow (pip install pyarrow), or use --format=csv")
    if table_format != "csv" and pyarrow is not None:
        path = f"{stem}.parquet"
        pyarrow.parquet.write_table(pyarrow.table({n: np.asarray(v) for n, v in columns.items()}), path)
        return path
    path = f"{stem}.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(columns))
        # repr of a Python float round-trips exactly (float32 metrics widen to float64 without loss).
        cells = [[repr(v.item()) if v.dtype.kind == "f" else v.item() for v in row] for row in zip(*columns.values())]
        writer.writerows(cells)
    return path


def read_table(path: str) -> dict[str, np.ndarray]:
    """Read a table written by write_table back into numpy columns (CSV: integers, then floats, else strings)."""
    if path.endswith(".parquet"):
        table = _pyarrow().parquet.read_table(path)
        return {name: table.column(name).to_numpy() for name in table.column_names}
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    columns = {}
    for name, cells in zip(rows[0], zip(*rows[1:])):
        for parse in (int, float, _boolean, str):  # the narrowest type every cell parses as: ids stay integers
            try:
                columns[name] = np.asarray([parse(c) for c in cells])
                break
            except ValueError:
                continue
    return columns


def _boolean(cell: str) -> bool:
    """A CSV cell written from a bool column (`failed`)."""
    if cell not in ("True", "False"):
        raise ValueError(cell)
    return cell == "True"


def _ranges(ids: np.ndarray) -> str:
    """'0..4, 9, 12..13' for sorted integer ids."""
    if len(ids) == 0:
        return "none"
    breaks = np.flatnonzero(np.diff(ids) != 1)
    starts, ends = np.r_[ids[0], ids[breaks + 1]], np.r_[ids[breaks], ids[-1]]
    return ", ".join(f"{s}" if s == e else f"{s}..{e}" for s, e in zip(starts, ends))


def sweep_status(manifest: dict, loaded: dict[str, results_lib.Results], exit_statuses: dict[str, Any]) -> dict:
    """Per shard of a launched sweep: state and finished generations; and the chain ids not (fully) computed."""
    horizon = manifest["num_generations"]
    shard_rows, present, unfinished = [], [], []
    for shard in manifest["shards"]:
        run = loaded.get(shard["workdir"])
        status = exit_statuses.get(shard["workdir"])
        if run is None:
            state, last = "not started", -1
        else:
            last = finished_generations(run)
            present.append(run.chain_ids)
            state = "complete" if last >= horizon else f"partial: generations 0..{last} of {horizon}"
            if last < horizon:
                unfinished.append(run.chain_ids)
        chains = f"{shard['chain_low']}..{shard['chain_high'] - 1}"
        shard_rows.append(
            {"shard": shard["index"], "chains": chains, "state": state, "finished": last, "exit_status": status}
        )
    present_ids = np.concatenate(present) if present else np.zeros(0, np.int64)
    missing = np.setdiff1d(np.arange(manifest["total_chains"]), present_ids)
    unfinished_ids = np.sort(np.concatenate(unfinished)) if unfinished else np.zeros(0, np.int64)
    return {
        "shards": shard_rows,
        "missing_chains": _ranges(missing),
        "unfinished_chains": _ranges(unfinished_ids),
        "complete": len(missing) == 0 and len(unfinished_ids) == 0,
    }
