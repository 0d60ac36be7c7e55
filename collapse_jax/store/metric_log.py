"""Append-only metric files of one static group: each chunk appends one slab, nothing written is ever rewritten.

metrics/group_<i>/: header.json (chains, metric names, dtype, record_every), <metric>.f32 (rows [recorded
generations, chains] float32), generations.i32 (each row's generation, appended last: a row exists once it is
there), events.npz (per event metric, the first generation each chain reached 1; -1: not yet).
"""

from __future__ import annotations

import errno
import json
import os

import numpy as np

from collapse_jax.store import workdir_io
from collapse_jax.store.writer import OrderedWriter

HEADER, GENERATIONS, EVENTS = "header.json", "generations.i32", "events.npz"
FORMAT_VERSION = 1
NEVER = -1  # event generation of a chain that has not reached the event


def directory(workdir: str, group_index: int) -> str:
    return os.path.join(workdir, "metrics", f"group_{group_index:03d}")


def _metric_path(folder: str, name: str) -> str:
    return os.path.join(folder, f"{name}.f32")


def _in_file_layout(rows: np.ndarray) -> bool:
    """float32 rows [n, chains], each row contiguous: what write_slab writes without a copy."""
    return rows.dtype == np.float32 and rows.ndim == 2 and rows.strides[1] == rows.itemsize


def kept_rows(rows: np.ndarray, keep: np.ndarray | slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
    """`rows[keep]` ([generations, chains], as the compiled chunk returns them) as float32 rows, the file layout: a view
    of the array itself when each of its rows is contiguous (all generations kept; chains cut from padded rows), else a
    contiguous copy, into the first rows of `out` when given (a reused buffer: fresh memory costs a page fault per
    4 KiB)."""
    rows = np.asarray(rows)
    if isinstance(keep, slice):
        selected = rows[keep]
        if _in_file_layout(selected):
            return selected  # written as it is, padding chains skipped (write_slab)
        if out is None:
            return np.ascontiguousarray(selected, np.float32)
        into = out[: len(selected)]
        np.copyto(into, selected, casting="unsafe")  # 0/1 event metrics arrive as bool
        return into
    if out is None or rows.dtype != np.float32:
        return np.ascontiguousarray(rows[keep], np.float32)
    return np.compress(keep, rows, axis=0, out=out[: np.count_nonzero(keep)])


def recorded(generations: np.ndarray, record_every: int, num_generations: int) -> np.ndarray:
    """Which of `generations` are kept: every record_every-th (so generation 0) and the run's last."""
    return (generations % record_every == 0) | (generations == num_generations)


def expected_generations(num_generations: int, record_every: int) -> np.ndarray:
    """The generations a finished run of `num_generations` keeps."""
    every = np.arange(num_generations + 1)
    return every[recorded(every, record_every, num_generations)]


def read_header(workdir: str, group_index: int) -> dict | None:
    path = os.path.join(directory(workdir, group_index), HEADER)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def start(workdir: str, group_index: int, chains: int, names: list[str], record_every: int) -> None:
    """Begin a group's files afresh: the header, and every metric file empty (a stale one is cut to nothing)."""
    folder = directory(workdir, group_index)
    os.makedirs(folder, exist_ok=True)
    header = {
        "format": FORMAT_VERSION,
        "chains": chains,
        "metrics": list(names),
        "dtype": "float32",
        "first_generation": 0,
        "record_every": record_every,
    }
    workdir_io.write_json(os.path.join(folder, HEADER), header)
    for path in [_metric_path(folder, name) for name in names] + [os.path.join(folder, GENERATIONS)]:
        open(path, "wb").close()
    if os.path.exists(os.path.join(folder, EVENTS)):
        os.remove(os.path.join(folder, EVENTS))


def _file_rows(value: np.ndarray) -> np.ndarray:
    """write_slab's input: the array itself when it is in the file layout, else a contiguous float32 copy."""
    value = np.asarray(value)
    return value if _in_file_layout(value) else np.ascontiguousarray(value, np.float32)


def append(workdir: str, group_index: int, generations: np.ndarray, rows: dict[str, np.ndarray]) -> None:
    """Append rows [len(generations), chains] per metric; on any failure every file is cut back to where it was."""
    if not len(generations):
        return
    folder = directory(workdir, group_index)
    slabs = [(_metric_path(folder, name), _file_rows(value)) for name, value in rows.items()]
    slabs.append((os.path.join(folder, GENERATIONS), np.asarray(generations, np.int32)))  # last: it commits the row
    sizes = [os.path.getsize(path) for path, _ in slabs]
    try:
        for path, slab in slabs:
            write_slab(path, slab)
    except BaseException as error:
        for (path, _), size in zip(slabs, sizes):
            os.truncate(path, size)
        if workdir_io.is_out_of_space(error):
            raise workdir_io.OutOfDiskSpace(folder, sum(slab.nbytes for _, slab in slabs)) from error
        raise


# A slab at least this large is written back at once and dropped from the page cache: metric files are written once
# and read after the run, and a long run's cache of them would otherwise take fresh pages for every chunk. On the VM
# measured, appending 112 MB (a 400-generation chunk of 10^4 chains x 7 metrics) took 310-370 ms into fresh pages
# and 23-29 ms into pages the cache had dropped (fdatasync on the writer thread: I/O wait beside the device's chunk).
DROP_CACHE_BYTES = 8 << 20


# Rows per os.writev call (POSIX guarantees at least 16 buffers per call; Linux takes 1024).
ROWS_PER_WRITE = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") and "SC_IOV_MAX" in os.sysconf_names else 16


def _write_rows(descriptor: int, slab: np.ndarray) -> None:
    """Write rows that are each contiguous but not adjacent (chains cut from padded rows) with one writev per
    ROWS_PER_WRITE rows, without first copying them together; a short write is a full disk."""
    rows = [memoryview(row) for row in slab]
    for first in range(0, len(rows), ROWS_PER_WRITE):
        batch = rows[first : first + ROWS_PER_WRITE]
        expected = sum(row.nbytes for row in batch)
        written = os.writev(descriptor, batch)
        if written != expected:
            raise OSError(errno.ENOSPC, f"short write: {written} of {expected} bytes")


def write_slab(path: str, slab: np.ndarray) -> None:
    """Append the bytes of one array to a file (the one place metric bytes are written): a C-contiguous array, or
    rows [n, chains] each contiguous (as kept_rows hands them over)."""
    with open(path, "ab") as handle:
        start = handle.tell()
        if slab.flags.c_contiguous:
            handle.write(slab.data)
        else:
            handle.flush()
            _write_rows(handle.fileno(), slab)
        if slab.nbytes >= DROP_CACHE_BYTES and hasattr(os, "posix_fadvise"):
            handle.flush()
            os.fdatasync(handle.fileno())
            os.posix_fadvise(handle.fileno(), start, slab.nbytes, os.POSIX_FADV_DONTNEED)


def sync(workdir: str, group_index: int) -> None:
    """fsync every metric file, so a checkpoint committed after this never outlives the rows it relies on."""
    folder = directory(workdir, group_index)
    for name in os.listdir(folder):
        if name.endswith((".f32", ".i32")):
            descriptor = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            except OSError as error:  # some filesystems (NFS) report a full disk only at fsync
                if workdir_io.is_out_of_space(error):
                    raise workdir_io.OutOfDiskSpace(os.path.join(folder, name), None) from error
                raise
            finally:
                os.close(descriptor)


def _complete_rows(folder: str, header: dict) -> int:
    """Rows present in every file (a torn append leaves some files longer, or a partial row: those do not count)."""
    row_bytes = 4 * header["chains"]
    counts = [os.path.getsize(os.path.join(folder, GENERATIONS)) // 4]
    counts += [os.path.getsize(_metric_path(folder, name)) // row_bytes for name in header["metrics"]]
    return min(counts)


def read(workdir: str, group_index: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(generations [rows], metric -> [rows, chains]) of the complete rows; the arrays map the files copy-on-write."""
    folder, header = directory(workdir, group_index), read_header(workdir, group_index)
    rows, chains = _complete_rows(folder, header), header["chains"]
    generations = np.fromfile(os.path.join(folder, GENERATIONS), np.int32, count=rows)
    if rows == 0:
        return generations, {name: np.empty((0, chains), np.float32) for name in header["metrics"]}
    metrics = {
        name: np.memmap(_metric_path(folder, name), np.float32, mode="c", shape=(rows, chains))
        for name in header["metrics"]
    }
    return generations, metrics


def truncate(workdir: str, group_index: int, generation: int) -> np.ndarray:
    """Cut every file to the complete rows of generations <= `generation`; returns the generations kept."""
    folder, header = directory(workdir, group_index), read_header(workdir, group_index)
    rows = _complete_rows(folder, header)
    generations = np.fromfile(os.path.join(folder, GENERATIONS), np.int32, count=rows)
    kept = int(np.searchsorted(generations, generation, side="right"))
    for name in header["metrics"]:
        os.truncate(_metric_path(folder, name), kept * 4 * header["chains"])
    os.truncate(os.path.join(folder, GENERATIONS), kept * 4)
    return generations[:kept]


def write_events(workdir: str, group_index: int, events: dict[str, np.ndarray]) -> None:
    """events.npz, atomically: [chains] int32 per event metric."""
    path = os.path.join(directory(workdir, group_index), EVENTS)
    workdir_io.atomic_write(path, lambda handle: np.savez(handle, **events))


def read_events(workdir: str, group_index: int) -> dict[str, np.ndarray]:
    path = os.path.join(directory(workdir, group_index), EVENTS)
    if not os.path.isfile(path):
        return {}
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def first_reached(values: np.ndarray, generations: np.ndarray) -> np.ndarray:
    """Per chain, the first of `generations` whose value (rows [len(generations), chains]) is 1 (NEVER when none)."""
    hit = values >= 1.0  # NaN (a failed chain's blanked metric) is not a hit
    return np.where(hit.any(axis=0), generations[np.argmax(hit, axis=0)], NEVER).astype(np.int32)


class Recorder:
    """The host side of one group's metrics: keeps only the chunk in flight (plus per-chain event generations).

    With a workdir, recorded rows are appended to the files (by the primary process); without one they are kept in
    memory for `history()` (an in-memory run returns its whole history anyway).
    """

    def __init__(
        self,
        workdir: str | None,
        group_index: int,
        chains: int,
        config,
        event_names: tuple[str, ...],
        write=True,
        writer: OrderedWriter | None = None,
    ):
        self.workdir, self.group_index, self.chains = workdir, group_index, chains
        self.writer = writer or OrderedWriter(threaded=False)  # the files' appends run in the order they are added
        self.write = workdir is not None and write  # other processes of a multi-host run track events only
        self.record_every, self.num_generations = config.get("record_every", 1), config.num_generations
        self.event_names = event_names
        self.events: dict[str, np.ndarray] = {}
        self.generations: list[np.ndarray] = []  # in-memory runs only
        self.rows: list[dict[str, np.ndarray]] = []
        # One reused [generations, chains] buffer per metric for the rows the writer must copy (a recorded subset, or
        # chains cut from padded ones): fresh memory costs a page fault per 4 KiB (on the VM measured, a fresh
        # [400, 10^4] copy took 13-73 ms, into a reused buffer 10).
        self._buffers: dict[str, np.ndarray] = {}

    @property
    def failed(self) -> np.ndarray:
        """[chains] bool: the chain has gone non-finite."""
        return self.events["failed"] != NEVER

    def start(self, first: dict[str, np.ndarray]) -> None:
        """Generation 0 of a fresh run: metric -> [chains] values."""
        self.events = {name: np.full(self.chains, NEVER, np.int32) for name in self.event_names if name in first}
        if self.write:
            start(self.workdir, self.group_index, self.chains, list(first), self.record_every)
        self.add(0, {name: value[None, :] for name, value in first.items()})

    def resume(self, generation: int) -> None:
        """Continue after a checkpoint at `generation`: rows and events past it (a torn chunk) are dropped."""
        if self.write:
            if read_header(self.workdir, self.group_index) is None:
                migrate_npz(self.workdir, self.group_index, self.record_every, self.event_names)
            kept = truncate(self.workdir, self.group_index, generation)
            missing = np.setdiff1d(np.arange(0, generation + 1, self.record_every), kept)
            if len(missing):
                raise ValueError(
                    f"{directory(self.workdir, self.group_index)}: metric rows of generations {missing[:5].tolist()} "
                    f"are missing though the checkpoint is at generation {generation}; use a new --workdir"
                )
        saved = read_events(self.workdir, self.group_index)
        self.events = {
            name: np.where(value > generation, NEVER, value).astype(np.int32)
            for name, value in saved.items()
            if name in self.event_names
        }
        self.events.setdefault("failed", np.full(self.chains, NEVER, np.int32))  # a process that read no file yet

    def add(self, first_generation: int, values: dict[str, np.ndarray]) -> None:
        """Rows [count, chains] per metric, generations first_generation, ...: track events, keep the recorded ones."""
        count = next(iter(values.values())).shape[0]
        generations = np.arange(first_generation, first_generation + count)
        changed = False
        for name, event in self.events.items():
            reached = first_reached(values[name], generations)
            new = (event == NEVER) & (reached != NEVER)
            if new.any() or first_generation == 0:
                event[new], changed = reached[new], True
        keep = recorded(generations, self.record_every, self.num_generations)
        if keep.all():
            keep = slice(None)
        if self.workdir is None:  # an in-memory run
            self.generations.append(generations[keep])
            self.rows.append({name: kept_rows(value, keep) for name, value in values.items()})
            return
        if not self.write:
            return
        kept, events = generations[keep], {name: event.copy() for name, event in self.events.items()}
        self.writer.submit(lambda: self._write(kept, values, keep, events if changed else None))

    def _write(self, generations: np.ndarray, columns: dict[str, np.ndarray], keep, events: dict | None) -> None:
        """On the writer thread (jobs run one at a time, so the buffers are free): the chunk's rows [count, chains]
        appended as they are, or through the metric's reused buffer when they must be cut or cast."""
        rows = {}
        for name, value in columns.items():
            buffer = self._buffers.get(name)
            if buffer is None or len(buffer) < len(generations) or buffer.shape[1] != value.shape[1]:
                buffer = self._buffers[name] = np.empty((len(generations), value.shape[1]), np.float32)
            rows[name] = kept_rows(value, keep, buffer)
        append(self.workdir, self.group_index, generations, rows)
        if events is not None:
            write_events(self.workdir, self.group_index, events)

    def history(self) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """An in-memory run's (generations, metric -> [chains, recorded generations], events)."""
        names = self.rows[0].keys()
        metrics = {name: np.concatenate([rows[name] for rows in self.rows]).T for name in names}
        return np.concatenate(self.generations), metrics, self.events


def migrate_npz(workdir: str, group_index: int, record_every: int, event_names: tuple[str, ...]) -> None:
    """Rewrite a run from before append-only metrics (metrics/group_<i>.npz, every generation) as metric files."""
    old = workdir_io.metrics_path(workdir, group_index)
    if not os.path.isfile(old):
        raise ValueError(f"{directory(workdir, group_index)}: no metric files for the checkpoint; use a new --workdir")
    with np.load(old) as data:
        history = {name: data[name] for name in data.files}
    chains, columns = history["failed"].shape
    computed = np.flatnonzero(np.isfinite(history["failed"]).all(axis=0))
    generations = computed[recorded(computed, record_every, columns - 1)]
    start(workdir, group_index, chains, list(history), record_every)
    append(workdir, group_index, generations, {name: value[:, generations].T for name, value in history.items()})
    events = {name: first_reached(history[name][:, computed].T, computed) for name in event_names if name in history}
    write_events(workdir, group_index, events)
    sync(workdir, group_index)
    os.remove(old)
