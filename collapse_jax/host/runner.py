"""The host loop: for each static group, run chunks of K generations, append metrics, checkpoint, log progress.

`run(config, workdir)` resumes from the latest good checkpoint; `simulate(config)` runs in memory (tests, notebooks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from collapse_jax.analysis import results
from collapse_jax.core import curation
from collapse_jax.core.engine import Engine
from collapse_jax.core.regimes import make_regime
from collapse_jax.host import checkpoint, config_schema, devices, generators, monitoring, sweep
from collapse_jax.models import base, contract
from collapse_jax.store import artifacts, metric_log, workdir_io
from collapse_jax.store import writer as store_writer

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
PREEMPTED_EXIT_CODE = workdir_io.PREEMPTED_EXIT_CODE  # re-exported: launchers and tests read it here


class Preempted(Exception):
    """Raised after a SIGTERM/SIGUSR1 stop: the chunk in flight finished and was checkpointed."""


_stop_requested = threading.Event()


@contextlib.contextmanager
def preemption_handlers() -> Iterator[None]:
    """While running, SIGTERM/SIGUSR1 ask the host loop to checkpoint after the chunk in flight and stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stop_requested.clear()
    previous = {sig: signal.signal(sig, lambda signum, frame: _stop_requested.set()) for sig in PREEMPTION_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def build_engine(group: sweep.Group) -> Engine:
    """The group's engine: the family, regime and curation stage sweep.expand built, with its chain block and chunk
    length resolved."""
    config = group.config
    engine = Engine(
        model=group.model,
        regime=group.regime,
        reference=group.model.reference(),
        root_seed=config.root_seed,
        num_generations=config.num_generations,
        chunk_generations=1,
        chain_block=1,
        curation=group.curation,
    )
    setting = sweep.chain_block_setting(config)
    if setting == devices.AUTO_BLOCK:
        one_chain = {name: value[0] for name, value in padded_knobs(group.knobs, 1).items()}
        bytes_per_chain = engine.bytes_per_chain(one_chain)
        budget = devices.block_memory_bytes()
    else:
        bytes_per_chain = budget = 1
    chains, device_count = len(group.chain_ids), jax.device_count()
    block = devices.resolve_chain_block(setting, chains, device_count, bytes_per_chain, budget)
    metrics = len(engine.model.metric_names) + len(engine.bookkeeping_metrics) + 1  # + failed
    chunk = devices.resolve_chunk_generations(
        config.get("chunk_generations", devices.AUTO_BLOCK),
        chains,
        metrics,
        config.num_generations,
        config.checkpoint_every,
    )
    return dataclasses.replace(engine, chain_block=block, chunk_generations=chunk)


def _at_horizon(engine: Engine, group: sweep.Group, horizon: int) -> Engine:
    """The engine of a run with `horizon` generations: some families and regimes size buffers by it (KDE centres, raw
    pools), so a resume that extends num_generations reads the saved state through a build at the saved horizon."""
    if horizon == engine.num_generations:
        return engine
    config = group.config.copy_and_resolve_references()
    config.num_generations = horizon
    model = base.build(config)
    return dataclasses.replace(
        engine,
        model=model,
        regime=make_regime(config, model, group.maxima),
        reference=model.reference(),
        num_generations=horizon,
        curation=curation.make_curation(config, model),
    )


def padded_knobs(knobs: dict[str, np.ndarray], block: int) -> dict[str, np.ndarray]:
    """Pad the chain axis to a multiple of the block by repeating the last chain (its copies are never reported)."""
    count = len(knobs["seed"])
    padding = -count % block
    as_device = {
        name: value.astype(np.float32) if value.dtype == np.float64 else value for name, value in knobs.items()
    }
    return {name: np.concatenate([value, np.repeat(value[-1:], padding)]) for name, value in as_device.items()}


# Progress lines at most this often (and at a group's last generation): a line per chunk floods the log of a fast run.
PROGRESS_SECONDS = 5.0


class ProgressClock:
    """Generations per second since the end of the first chunk after a (re)start: that chunk carries the compile, so a
    rate that counted it would put the ETA of a resumed run at several times its real length."""

    def __init__(self, seconds: float = PROGRESS_SECONDS):
        self.seconds = seconds
        self.first: tuple[float, int] | None = None  # (time, generation) at the end of the first chunk
        self.logged = -float("inf")

    def rate(self, now: float, generation: int) -> float | None:
        """Generations per second, or None until a chunk after the first has finished."""
        if self.first is None:
            self.first = (now, generation)
            return None
        seconds, generations = now - self.first[0], generation - self.first[1]
        return generations / seconds if seconds > 0 and generations > 0 else None

    def due(self, now: float, generation: int, total: int) -> bool:
        """Whether to log now: the first chunk, every `seconds` after, and the last generation."""
        if now - self.logged >= self.seconds or generation == total:
            self.logged = now
            return True
        return False


def _progress(group: sweep.Group, generation: int, total: int, chains: int, clock: ProgressClock) -> None:
    """Called after every chunk; logs a line at the clock's cadence."""
    now = time.perf_counter()
    rate = clock.rate(now, generation)
    if not clock.due(now, generation, total):
        return
    label = ", ".join(f"{k}={v}" for k, v in group.labels.items())
    speed = "compiling and first chunk done" if rate is None else f"{rate:.2f} generations/s"
    eta = "" if rate is None else f" | ETA {(total - generation) / rate:.0f} s"
    logging.info(
        "group %d (%s) | generation %d/%d | %d chains | %s%s", group.index, label, generation, total, chains, speed, eta
    )


def _warn_failures(group: sweep.Group, failed_before: np.ndarray, failed_now: np.ndarray, generation: int) -> None:
    for local in np.flatnonzero(failed_now & ~failed_before):
        knobs = {name: value[local].item() for name, value in group.knobs.items()}
        logging.warning(
            "chain %d %s went non-finite by generation %d; frozen and flagged failed",
            group.chain_ids[local],
            knobs,
            generation,
        )


def _split_artifacts(outputs: dict, chain_axis_only: bool = False) -> tuple[dict, dict]:
    """Scalars per chain per generation are metrics (a chunk's as rows [K, chains]); anything larger a model returns
    (texts, images; [chains, K, ...]) is an artifact."""
    scalar_ndim = 1 if chain_axis_only else 2
    metrics = {k: v for k, v in outputs.items() if v.ndim == scalar_ndim}
    return metrics, {k: v for k, v in outputs.items() if v.ndim > scalar_ndim}


def _zero_pad_to(value: np.ndarray, target: jax.ShapeDtypeStruct) -> np.ndarray:
    """Pad every axis of `value` with zeros at its end up to the target shape."""
    return np.pad(value, [(0, want - have) for have, want in zip(value.shape, target.shape)])


def resize_chains(tree: Any, count: int) -> Any:
    """Host arrays with the chain axis cut or edge-padded to `count` (padding chains are copies, never reported)."""

    def resize(value):
        value = np.asarray(value)
        if value.shape[0] >= count:
            return value[:count]
        return np.concatenate([value, np.repeat(value[-1:], count - value.shape[0], axis=0)])

    return jax.tree.map(resize, tree)


def _restore(manager: checkpoint.GroupCheckpoints, group: sweep.Group, engine: Engine, padded: int):
    """Latest good checkpoint as host arrays: (generation, state [padded chains]), or None when fresh.

    Pools grow when num_generations was extended; the chain padding follows the current device count, so a run saved
    on 8 devices resumes on 1 and vice versa. The metric history is not in the checkpoint: it is the metric files.
    """

    saved_engines = {}  # by saved horizon: an older checkpoint tried after a corrupt one reuses its build

    def restore_one(step: int):
        record = manager.read_record(step)
        horizon = record["num_generations"]
        if horizon not in saved_engines:
            # Blocks of one chain: the saved chain count need not be a multiple of this run's block (same shapes).
            saved_engines[horizon] = dataclasses.replace(_at_horizon(engine, group, horizon), chain_block=1)
        saved_engine = saved_engines[horizon]
        saved_knobs = resize_chains(padded_knobs(group.knobs, 1), record["padded_chains"])
        abstract_state = jax.eval_shape(saved_engine.init_all, saved_knobs)[0]
        return manager.restore(step, abstract_state)

    found = manager.restore_latest_good(restore_one)
    if found is None:
        return None
    generation, (state, _) = found
    state = resize_chains(devices.to_host(dict(state)), padded)
    # An extended horizon grows horizon-sized buffers (raw pools, KDE centres): zero-padded slots carry weight 0.
    target = jax.eval_shape(engine.init_all, padded_knobs(group.knobs, padded))[0]
    state = jax.tree.map(_zero_pad_to, state, target)
    logging.info("group %d: resumed from the checkpoint at generation %d", group.index, generation)
    return generation, state


def event_metric_names(model: Any) -> tuple[str, ...]:
    """0/1 metrics whose first generation at 1 is kept exactly whatever record_every is: `failed` and the family's."""
    return ("failed", *(model.event_metrics if base.supports(model, base.EventMetrics) else ()))


def _checkpoint_due(every: int | str, generations_since: int, seconds_since: float) -> bool:
    """Whether the chunk that just finished checkpoints: after `every` generations, or for "auto" once
    devices.CHECKPOINT_SECONDS have passed since the last checkpoint. Several processes follow the primary's clock (all
    of them call this after every chunk): their Orbax saves synchronize, so they must all save or none."""
    if every != devices.AUTO_BLOCK:
        return generations_since >= every
    due = seconds_since >= devices.CHECKPOINT_SECONDS
    if jax.process_count() > 1:
        due = bool(multihost_utils.broadcast_one_to_all(np.int32(due)))
    return due


def run_group(group: sweep.Group, workdir: str | None) -> metric_log.Recorder:
    """All generations of one static group; with a workdir the metrics go to its files as each chunk finishes."""
    config = group.config
    generations, chains = config.num_generations, len(group.chain_ids)
    engine = build_engine(group)
    chunk = engine.chunk_generations
    mesh = devices.chain_mesh()
    # Every device runs whole blocks of B chains, so padding is to a multiple of B x devices.
    knobs = padded_knobs(group.knobs, engine.chain_block * mesh.size)
    padded = len(knobs["seed"])
    device_knobs = devices.shard_chains(knobs, mesh)
    programs: dict[str, tuple] = {}

    def compiled(generator: str) -> tuple:
        """(init_all, chunk_all) tracing the draws with `generator` (same bits; compiled on first use)."""
        if generator not in programs:
            programs[generator] = dataclasses.replace(engine, generator=generator).compile(mesh)
        return programs[generator]

    writes = workdir is not None and devices.is_primary()
    # File work (appends, fsync, checkpoint saves) runs on one thread in order, beside the device's next chunk. Several
    # processes keep it in the loop: their checkpoint saves synchronize across processes in the order they are made.
    writer = store_writer.OrderedWriter(threaded=workdir is not None and jax.process_count() == 1)
    recorder = metric_log.Recorder(
        workdir, group.index, chains, config, event_metric_names(engine.model), devices.is_primary(), writer
    )
    manager, restored = None, None
    if workdir is not None:
        manager = checkpoint.GroupCheckpoints(
            os.path.join(workdir, "checkpoints", f"group_{group.index:03d}"),
            config.max_checkpoints_to_keep,
            config.get("keep_period"),
        )
        restored = _restore(manager, group, engine, padded)
    record = {
        "num_generations": generations,
        "record_every": config.get("record_every", 1),
        "config": config.to_json(),
        "labels": group.labels,
        "padded_chains": padded,
    }

    def save(generation: int, device_state: Any) -> None:
        host_state, saved = devices.to_host(device_state), {**record, "generation": generation}

        def commit() -> None:
            # The rows up to `generation` reach the disk before the checkpoint that relies on them can commit.
            if writes:
                metric_log.sync(workdir, group.index)
            manager.save(generation, host_state, saved)

        writer.submit(commit)

    try:
        chunks_left = -(-(generations - (0 if restored is None else restored[0])) // chunk)
        plan = generators.Plan(
            config.get("generator", generators.AUTO),
            generators.signature(engine, padded),
            chunks_left,
            chains * chunks_left * chunk,
            jax.process_count(),
        )
        if restored is None:
            state, first = compiled(plan.name(0))[0](device_knobs)
            first, first_artifacts = _split_artifacts(devices.to_host(first), chain_axis_only=True)
            recorder.start({name: value[:chains] for name, value in first.items()})
            if writes:
                artifacts.write(workdir, group.index, [0], {k: v[:chains, None] for k, v in first_artifacts.items()})
            done_generation = 0
            if manager is not None:
                save(0, state)
        else:
            done_generation, host_state = restored
            state = devices.shard_chains(host_state, mesh)
            recorder.resume(done_generation)
            if writes:
                workdir_io.record_resume(workdir, group.index, done_generation, generations)
        every = devices.checkpoint_every_setting(config.checkpoint_every)
        last_saved, saved_at, clock, failed = done_generation, time.monotonic(), ProgressClock(), recorder.failed
        start, dispatched = done_generation + 1, 0

        def dispatch(state: Any, first_generation: int) -> tuple:
            nonlocal dispatched
            chunk_all = compiled(plan.name(dispatched))[1]
            dispatched += 1
            return chunk_all(state, device_knobs, np.int32(first_generation))

        in_flight = dispatch(state, start) if start <= generations else None
        finished, completed_at = 0, time.perf_counter()
        while in_flight is not None:
            state, chunk_metrics = in_flight
            count = min(chunk, generations - start + 1)
            # The next chunk is dispatched before this one's metrics reach the host: the device computes generation
            # start + count onwards while the host hands this chunk's rows and checkpoint to the writer (JAX dispatch
            # is asynchronous). On a stop request (with a workdir to checkpoint into) nothing more is dispatched: this
            # chunk's state is saved.
            next_start = start + count
            in_flight = None
            if next_start <= generations and not (workdir is not None and _stop_requested.is_set()):
                in_flight = dispatch(state, next_start)
            chunk_metrics, chunk_artifacts = _split_artifacts(devices.to_host(chunk_metrics))
            # The device runs the chunks back to back, so the interval between two chunks' metrics reaching the host
            # is the later chunk's time (what the generator measurement compares).
            now = time.perf_counter()
            plan.finished(finished, now - completed_at)
            finished, completed_at = finished + 1, now
            recorder.add(start, {name: value[:count, :chains] for name, value in chunk_metrics.items()})
            if writes and chunk_artifacts:  # like metrics, artifacts are kept for the recorded generations only
                generation_range = np.arange(start, start + count)
                kept = metric_log.recorded(generation_range, recorder.record_every, generations)
                chunk_artifacts = {k: v[:chains, :count][:, kept] for k, v in chunk_artifacts.items()}
                kept_generations = generation_range[kept].tolist()
                writer.submit(lambda g=kept_generations, a=chunk_artifacts: artifacts.write(workdir, group.index, g, a))
            done_generation = start + count - 1
            _warn_failures(group, failed, recorder.failed, done_generation)
            failed = recorder.failed
            if workdir is not None:
                if writes and config.get("tensorboard", False):
                    writer.submit(lambda: _tensorboard(workdir))
                stopping = _stop_requested.is_set()
                due = _checkpoint_due(every, done_generation - last_saved, time.monotonic() - saved_at)
                if due or done_generation == generations or stopping:
                    save(done_generation, state)
                    last_saved, saved_at = done_generation, time.monotonic()
                if stopping:
                    writer.flush()
                    manager.wait()
                    raise Preempted(f"stopped by a preemption signal after generation {done_generation} (checkpointed)")
            _progress(group, done_generation, generations, chains, clock)
            start = next_start
        writer.flush()
        if manager is not None:
            manager.wait()
    finally:
        # Writes already handed over still run (a full disk stops the run at the last checkpoint, intact).
        writer.close()
        if manager is not None:
            with contextlib.suppress(Exception):
                manager.wait()
            manager.close()
    return recorder


def _tensorboard(workdir: str) -> None:
    """Summaries of the generations written so far into <workdir>/tensorboard (shares launch.monitor's progress file,
    so a sidecar monitor and the run never write a generation twice)."""
    if monitoring.available():
        monitoring.summarize_workdir(workdir)
    else:
        monitoring.write_chunk_summary(workdir, {}, {}, [])  # logs the install hint once


def run(config: ml_collections.ConfigDict, workdir: str | None) -> results.Results:
    """Validate, expand the sweep, run (or resume) every group; with a workdir, results/checkpoints go there."""
    groups = sweep.expand(config)
    if workdir is None:
        return results.from_groups(config, groups, [run_group(group, None).history() for group in groups])
    defaults = config_schema.declared_defaults(config.model.name)
    family = base.family_class(config.model.name)
    switches = family.error_source_switches if contract.supports(family, contract.ErrorSources) else {}
    claim = (
        workdir_io.claim(workdir, config, groups, defaults, switches)
        if devices.is_primary()
        else contextlib.nullcontext()
    )
    try:
        with claim, preemption_handlers():
            for group in groups:
                run_group(group, workdir)
    finally:
        monitoring.close_all()  # flush TensorBoard event files (config.tensorboard), also on preemption
    return results.load(workdir)


def simulate(config: ml_collections.ConfigDict) -> results.Results:
    """Run every chain in memory (no files) and return the results object."""
    return run(config, None)


def as_config(overrides: dict[str, Any], base_config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `base_config` with dotted-path overrides (test and notebook convenience)."""
    config = ml_collections.ConfigDict(base_config.to_dict())
    for path, value in overrides.items():
        sweep.set_field(config, path, value)
    return config
