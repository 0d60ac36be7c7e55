"""Shared timing pieces: compiled-chunk timers (engine or reference), interleaved best-of repeats, the results table.

The machine may be shared, so every comparison runs its contestants in turn within one process and keeps each one's
fastest repeat; ratios of those minima are what the benchmarks report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from collapse_jax.host import runner, sweep


def interleaved_best(timers: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Call each timer in turn, `repeats` rounds; the smallest value each returned."""
    best = {name: float("inf") for name in timers}
    for _ in range(repeats):
        for name, timer in timers.items():
            best[name] = min(best[name], timer())
    return best


class ChunkTimer:
    """Steady-state seconds per generation of a compiled (init_all, chunk_all) pair, metrics copied to the host.

    Construction compiles both functions (compile_seconds), runs generation 0 and one warm-up chunk; each call then runs
    the next chunk of K generations and returns its wall time / K, including the host copy the runner makes.
    """

    def __init__(self, init_all: Callable, chunk_all: Callable, knobs: dict, chunk_generations: int):
        knobs = jax.device_put(knobs)  # once, as the runner does: the timed calls move no inputs
        self.chunk_all, self.knobs, self.chunk_generations = chunk_all, knobs, chunk_generations
        chains = knobs["seed"].shape[0]
        started = time.perf_counter()
        state_shape, _ = jax.eval_shape(init_all, knobs)
        init_all.lower(knobs).compile()
        chunk_all.lower(state_shape, knobs, np.int32(1)).compile()
        self.compile_seconds = time.perf_counter() - started
        self.state_bytes_per_chain = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state_shape)) / chains
        self.state, _ = init_all(knobs)
        self.start = 1
        self()  # warm-up chunk

    def __call__(self) -> float:
        started = time.perf_counter()
        self.state, metrics = self.chunk_all(self.state, self.knobs, np.int32(self.start))
        _ = {name: np.asarray(value) for name, value in metrics.items()}
        jax.block_until_ready(self.state)  # a chunk without metrics (the RNG floor) would otherwise time the dispatch
        self.start += self.chunk_generations
        return (time.perf_counter() - started) / self.chunk_generations


def engine_config(module: Any, chains: int, chunk_generations: int, chain_block: int | str | None, **overrides):
    """A shipped config under replace, rho = 0, with `chains` seeds (chain_block None: the shipped one, e.g. auto)."""
    config = module.get_config()
    values = {
        "regime.name": "replace",
        "regime.real_fraction": 0.0,
        "seeds": chains,
        # Far past the timed chunks, so every timed generation is active (replace keeps no pool: no memory cost).
        "num_generations": 1_000_000,
        "chunk_generations": chunk_generations,
        "chain_block": chain_block or config.chain_block,
        "make_plots": False,
        **overrides,
    }
    return runner.as_config(values, config)


def engine_timer(config) -> tuple[ChunkTimer, Any, dict]:
    """(timer, engine, padded knobs) of the first static group of `config`, compiled without a mesh."""
    group = sweep.expand(config)[0]
    engine = runner.build_engine(group)
    knobs = runner.padded_knobs(group.knobs, engine.chain_block)  # the block "auto" resolved to
    init_all, chunk_all = engine.compile()
    return ChunkTimer(init_all, chunk_all, knobs, engine.chunk_generations), engine, knobs


def row(name: str, value: float, unit: str, ratio: float | None = None, target: float | None = None,
        at_most: bool = True, **extra) -> dict:  # fmt: skip
    """One table row; with a target, status is PASS when ratio <= target (at_most) or ratio >= target (else MISS)."""
    status = ""
    if ratio is not None and target is not None:
        status = "PASS" if (ratio <= target if at_most else ratio >= target) else "MISS"
        if not ratio > 0:  # a non-positive or NaN ratio is noise (e.g. a wall-time difference on a loaded machine)
            status = "NOISY"
    bound = "" if target is None else f"{'<=' if at_most else '>='} {target:g}x"
    return {"name": name, "value": value, "unit": unit, "ratio": ratio, "target": bound, "status": status, **extra}


def print_table(rows: list[dict]) -> None:
    """name, value, unit, ratio, target, PASS/MISS; one line per row."""
    print(f"{'name':52s} {'value':>14s} {'unit':16s} {'ratio':>8s} {'target':>9s} status")
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        print(f"{r['name']:52s} {r['value']:14.4g} {r['unit']:16s} {ratio:>8s} {r['target']:>9s} {r['status']}")


def write_json(rows: list[dict], path: str, **header) -> None:
    with open(path, "w") as file:
        json.dump({**header, "rows": rows}, file, indent=1, default=float)
