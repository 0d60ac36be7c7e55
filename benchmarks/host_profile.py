"""Where a chunk's host time goes: runner.run with a workdir, its host pieces timed per thread, beside the bare chunk.

python -m benchmarks.host_profile [--chains=10000 --chunk=auto --checkpoint_every=auto --chunks=5 --repeats=2]
One process, in turn: the compiled chunk alone (benchmarks.timing.ChunkTimer: compute plus the metrics' host copy) and
runner.run on a fresh workdir (the shipped Gaussian config, replace, rho = 0, plots off; chunk and checkpoint cadence as
shipped unless set), `--chunks` chunks long. Each host piece (metric
transfer, appends, fsync, event files, checkpoint saves, progress) is wrapped with a wall-clock timer that adds to the
thread it ran on; `host share` = 1 - bare chunk / run's chunk, the part of a chunk the run adds on top of the compute.
"""

from __future__ import annotations

import collections
import functools
import os
import shutil
import tempfile
import threading
import time

from absl import app, flags

from benchmarks import timing
from collapse_jax.host import checkpoint, devices, runner, sweep
from collapse_jax.store import metric_log
from experiments.configs import gaussian

# (module, attribute, label): the host pieces of one chunk.
PIECES = (
    (devices, "to_host", "device -> host copies (metrics, state; includes waiting for the chunk)"),
    (metric_log, "kept_rows", "metric rows cut to the recorded generations and chains (copies only if needed)"),
    (metric_log, "append", "metric appends (write)"),
    (metric_log, "sync", "fsync of the metric files"),
    (metric_log, "write_events", "event file (failed chains)"),
    (checkpoint.GroupCheckpoints, "save", "Orbax checkpoint save (synchronous part)"),
    (checkpoint.GroupCheckpoints, "wait", "waiting for Orbax saves to commit"),
    (runner, "_progress", "progress line"),
)


def run_config(chains: int, generations: int, chunk: int | str, checkpoint_every: int | str):
    values = {
        "regime.name": "replace",
        "regime.real_fraction": 0.0,
        "seeds": chains,
        "num_generations": generations,
        "chunk_generations": chunk,
        "checkpoint_every": checkpoint_every,
        "make_plots": False,
    }
    return runner.as_config(values, gaussian.get_config())


def resolved_chunk(chains: int, chunk: int | str, checkpoint_every: int | str) -> int:
    """The chunk length a run of `chains` chains uses (an "auto" chunk resolved as runner.run resolves it)."""
    config = run_config(chains, 10**6, chunk, checkpoint_every)
    return runner.build_engine(sweep.expand(config)[0]).chunk_generations


class Timers:
    """Wall seconds per (thread, piece) while installed."""

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.calls = collections.defaultdict(int)
        self.saved = []

    def install(self):
        for owner, name, label in PIECES:
            original = getattr(owner, name)
            self.saved.append((owner, name, original))
            setattr(owner, name, self.wrap(original, label))

    def uninstall(self):
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)
        self.saved = []

    def wrap(self, function, label):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                key = (threading.current_thread().name, label)
                self.seconds[key] += time.perf_counter() - started
                self.calls[key] += 1

        return timed


def measure(chains: int, chunks: int, chunk: int | str, checkpoint_every: int | str, repeats: int) -> dict:
    """Best-of-`repeats` ms per generation of the bare chunk and of the run's loop (a run of `chunks` chunks, timed from
    the second chunk's end to the last's; the bare chunk as the mean of that many consecutive chunks), and the run's
    host pieces."""
    chunk = resolved_chunk(chains, chunk, checkpoint_every)
    generations = chunks * chunk
    config = run_config(chains, generations, chunk, checkpoint_every)
    bare, _, _ = timing.engine_timer(timing.engine_config(gaussian, chains, chunk, None))
    root = tempfile.mkdtemp(prefix="collapse_host_profile_")
    best_loop, best_bare, pieces = float("inf"), float("inf"), None
    try:
        for _ in range(repeats):
            # The bare chunk over as many consecutive chunks as the run's timed interval spans (its mean, as the
            # run's): the fastest single chunk against a mean of several would count the chunks' own spread as host.
            spanned = max(1, chunks - 2)
            best_bare = min(best_bare, sum(bare() for _ in range(spanned)) / spanned)
            finished = {}
            progress = runner._progress

            def stamped(group, generation, *args, progress=progress, finished=finished):
                finished[generation] = time.perf_counter()
                progress(group, generation, *args)

            timers = Timers()
            runner._progress = stamped
            timers.install()
            try:
                runner.run(config, os.path.join(root, "run"))
            finally:
                timers.uninstall()
                runner._progress = progress
            shutil.rmtree(os.path.join(root, "run"))
            # From the end of the second chunk to the last: compile and the first chunks' warm-up excluded.
            marks = sorted(finished)
            loop = (finished[marks[-1]] - finished[marks[1]]) / (marks[-1] - marks[1])
            if loop < best_loop:
                best_loop, pieces = loop, timers
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "chunk": chunk,
        "generations": generations,
        "bare_ms_per_generation": best_bare * 1e3,
        "run_ms_per_generation": best_loop * 1e3,
        "host_share": 1 - best_bare / best_loop,
        "pieces_ms_per_chunk": {
            f"[{thread}] {label}": (seconds / chunks * 1e3, pieces.calls[(thread, label)])
            for (thread, label), seconds in sorted(pieces.seconds.items())
        },
    }


def main(argv):
    del argv
    f = flags.FLAGS
    result = measure(f.chains, f.chunks, f.chunk, f.checkpoint_every, f.repeats)
    print(
        f"{f.chains} chains, chunk {f.chunk} = {result['chunk']} generations, checkpoint_every {f.checkpoint_every}, "
        f"{result['generations']} generations: bare chunk {result['bare_ms_per_generation']:.2f} ms/generation, run "
        f"{result['run_ms_per_generation']:.2f} ms/generation, host share {result['host_share']:.1%} "
        f"(load {os.getloadavg()[0]:.1f})"
    )
    for name, (ms, calls) in result["pieces_ms_per_chunk"].items():
        print(f"  {name:90s} {ms:8.2f} ms/chunk  ({calls} calls)")


if __name__ == "__main__":
    flags.DEFINE_integer("chains", 10_000, "Seeds = chains.")
    flags.DEFINE_integer("chunks", 5, "Chunks in each timed run (the loop is timed from the second chunk's end).")
    flags.DEFINE_string("chunk", "auto", "chunk_generations ('auto' as shipped, or an integer).")
    flags.DEFINE_string("checkpoint_every", "auto", "checkpoint_every ('auto' as shipped, or an integer).")
    flags.DEFINE_integer("repeats", 3, "Rounds (bare chunk and run in turn); the fastest run's pieces are shown.")
    app.run(main)
