"""Local backend: run a sweep's shards on this machine a few at a time, restarting a shard that was preempted.

A shard that exits 75 (runner.PREEMPTED_EXIT_CODE: SIGTERM/SIGUSR1, checkpointed) is rerun and resumes bit-identically;
SIGTERM/SIGINT to the launcher itself is forwarded to the running shards, which checkpoint and stop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

from absl import logging

from collapse_jax.analysis import aggregate
from collapse_jax.host.runner import PREEMPTED_EXIT_CODE
from launch import shards

LOG_FILE = "log.txt"
_POLL_SECONDS = 0.2


@dataclasses.dataclass
class ShardOutcome:
    """How a shard's runs ended: the last exit status and how many preemption restarts it took."""

    index: int
    status: int | None = None
    restarts: int = 0


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set `stop` (the loop then forwards SIGTERM to the shards) instead of killing the launcher."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start(shard: shards.Shard, python: str) -> subprocess.Popen:
    log = open(os.path.join(shard.workdir, LOG_FILE), "ab")  # append: a restarted shard keeps its earlier log
    try:
        return subprocess.Popen(
            shards.command(shard, python), cwd=shards.REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    finally:
        log.close()  # the child holds its own descriptor


def _record(shard: shards.Shard, status: int) -> None:
    with open(os.path.join(shard.workdir, aggregate.EXIT_STATUS_FILE), "w") as handle:
        handle.write(f"{status}\n")


def run(
    shard_list: list[shards.Shard],
    parallel: int = 2,
    max_restarts: int = 3,
    python: str = sys.executable,
    stop: threading.Event | None = None,
) -> list[ShardOutcome]:
    """Run every shard (at most `parallel` at once); returns each shard's outcome in shard order."""
    if parallel < 1:
        raise ValueError(f"--parallel: must be >= 1, got {parallel}")
    if max_restarts < 0:
        raise ValueError(f"--max_restarts: must be >= 0, got {max_restarts}")
    stop = stop or threading.Event()
    outcomes = {shard.index: ShardOutcome(shard.index) for shard in shard_list}
    waiting = list(shard_list)
    running: dict[int, tuple[shards.Shard, subprocess.Popen]] = {}
    forwarded = False
    with _stop_on_signals(stop):
        while waiting or running:
            if stop.is_set() and not forwarded:
                # Let each running shard checkpoint and exit 75; start nothing new.
                for _, process in running.values():
                    process.send_signal(signal.SIGTERM)
                forwarded, waiting = True, []
            while waiting and len(running) < parallel and not stop.is_set():
                shard = waiting.pop(0)
                running[shard.index] = (shard, _start(shard, python))
                logging.info("shard %d started (chains %d..%d)", shard.index, shard.chain_low, shard.chain_high - 1)
            time.sleep(_POLL_SECONDS)
            for index, (shard, process) in list(running.items()):
                status = process.poll()
                if status is None:
                    continue
                del running[index]
                _record(shard, status)
                outcome = outcomes[index]
                outcome.status = status
                if status == PREEMPTED_EXIT_CODE and not stop.is_set() and outcome.restarts < max_restarts:
                    # Preempted from outside (e.g. SIGTERM to the shard): rerun; it resumes from its checkpoint.
                    outcome.restarts += 1
                    logging.warning("shard %d preempted (exit %d); restart %d", index, status, outcome.restarts)
                    waiting.insert(0, shard)
                elif status != 0:
                    logging.warning("shard %d exited with status %d; see %s", index, status, shard.workdir)
                else:
                    logging.info("shard %d finished", index)
    return [outcomes[shard.index] for shard in shard_list]
