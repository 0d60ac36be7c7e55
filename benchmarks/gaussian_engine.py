"""Engine speed vs the anchors' way: Gaussian d = 1, M = 100, replace, many chains, side by side in one process.

python -m benchmarks.gaussian_engine [--chains=10000 --generations=1000 --loop_chains=50 --blocks=64,256,1024]
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from collapse_jax.host import runner, sweep
from experiments.configs import gaussian


def _metrics(mean, variance, test_mean, test_variance):
    """The engine's five Gaussian metrics for d = 1 (same outputs as collapse_jax.models.gaussian)."""
    return (
        mean**2,
        variance,
        np.log(variance),
        mean**2 + variance + 1.0 - 2.0 * np.sqrt(variance),
        0.5 * (np.log(2 * np.pi * variance) + (test_variance + (test_mean - mean) ** 2) / variance),
    )


def per_chain_numpy_loop(chains: int, generations: int, m: int) -> float:
    """Seconds per generation of all chains for one-chain-at-a-time numpy (the published code's structure)."""
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for _ in range(chains):
        data = rng.standard_normal(m)
        history = []
        for _ in range(generations):
            mean, variance = data.mean(), data.var()
            history.append(_metrics(mean, variance, 0.0, 1.0))
            data = rng.normal(mean, np.sqrt(variance), m)
    return (time.perf_counter() - started) / generations


def vectorized_numpy(chains: int, generations: int, m: int) -> float:
    """Seconds per generation for numpy vectorized over all chains, same metrics per generation."""
    rng = np.random.default_rng(0)
    data = rng.standard_normal((chains, m), dtype=np.float32)
    history = np.empty((5, chains, generations), np.float32)
    started = time.perf_counter()
    for g in range(generations):
        mean, variance = data.mean(axis=1), data.var(axis=1)
        history[:, :, g] = _metrics(mean, variance, 0.0, 1.0)
        data = mean[:, None] + np.sqrt(variance)[:, None] * rng.standard_normal((chains, m), dtype=np.float32)
    return (time.perf_counter() - started) / generations


def rng_floor(chains: int, generations: int, m: int) -> tuple[float, float]:
    """(compile s, s per generation) of jax.random.normal drawing chains x M values per generation in a scan."""

    @jax.jit
    def draw(key):
        def body(total, g):
            values = jax.random.normal(jax.random.fold_in(key, g), (chains, m))
            # Sum every value: reading only values[:, 0] lets XLA skip generating the rest (not an honest floor).
            return total + jnp.sum(values, axis=1), None

        return jax.lax.scan(body, jnp.zeros(chains), jnp.arange(generations))[0]

    started = time.perf_counter()
    draw.lower(jax.random.key(0)).compile()
    compile_seconds = time.perf_counter() - started
    draw(jax.random.key(1)).block_until_ready()
    started = time.perf_counter()
    draw(jax.random.key(2)).block_until_ready()
    return compile_seconds, (time.perf_counter() - started) / generations


def engine_run(chains: int, generations: int, m: int, block: int, chunk: int) -> tuple[float, float]:
    """(compile s, steady-state s per generation) of the engine's compiled chunks, metrics included."""
    config = runner.as_config(
        {
            "regime.name": "replace",
            "regime.real_fraction": 0.0,
            "seeds": chains,
            "num_generations": generations,
            "samples_per_generation": m,
            "chain_block": block,
            "chunk_generations": chunk,
            "model.test_size": 1000,
        },
        gaussian.get_config(),
    )
    group = sweep.expand(config)[0]
    engine = runner.build_engine(group)
    knobs = runner.padded_knobs(group.knobs, block)
    init_all, chunk_all = engine.compile()
    started = time.perf_counter()
    state, _ = init_all(knobs)
    chunk_all.lower(state, knobs, np.int32(1)).compile()
    compile_seconds = time.perf_counter() - started
    state, metrics = chunk_all(state, knobs, np.int32(1))  # warm-up chunk
    jax.block_until_ready(metrics)
    started = time.perf_counter()
    for start in range(1 + chunk, generations + 1, chunk):
        state, metrics = chunk_all(state, knobs, np.int32(start))
        _ = {name: np.asarray(value) for name, value in metrics.items()}  # the host copy the runner makes
    timed = len(range(1 + chunk, generations + 1, chunk)) * chunk
    return compile_seconds, (time.perf_counter() - started) / timed


def _define_flags() -> None:
    """Command-line flags, defined only when this file is the program (the suite imports its functions)."""
    flags.DEFINE_integer("chains", 10_000, "Chains per run.")
    flags.DEFINE_integer("generations", 1_000, "Generations per run.")
    flags.DEFINE_integer("samples_per_generation", 100, "M.")
    flags.DEFINE_integer("loop_chains", 50, "Chains the per-chain numpy loop runs (then scaled).")
    flags.DEFINE_list("blocks", ["64", "256", "1024"], "chain_block values to compare.")
    flags.DEFINE_integer("chunk_generations", 100, "K for the engine runs.")
    flags.DEFINE_integer("repeats", 2, "Repeat each timing, report the fastest (the machine is shared).")


def main(argv):
    del argv
    FLAGS = flags.FLAGS  # noqa: N806
    chains, generations, m = FLAGS.chains, FLAGS.generations, FLAGS.samples_per_generation
    print(f"Gaussian d=1, M={m}, replace: {chains} chains x {generations} generations, devices={jax.devices()}")
    repeats = range(FLAGS.repeats)
    loop = min(per_chain_numpy_loop(FLAGS.loop_chains, 50, m) for _ in repeats) * chains / FLAGS.loop_chains
    vectorized = min(vectorized_numpy(chains, min(generations, 200), m) for _ in repeats)
    floors = [rng_floor(chains, generations, m) for _ in repeats]
    floor_compile, floor = floors[0][0], min(f[1] for f in floors)
    print(f"(a) per-chain numpy loop : {loop * 1e3:9.2f} ms/generation (scaled from {FLAGS.loop_chains} chains)")
    print(f"(b) vectorized numpy     : {vectorized * 1e3:9.2f} ms/generation")
    print(f"(c) RNG floor            : {floor * 1e3:9.2f} ms/generation (compile {floor_compile:.2f} s)")
    for block in [int(b) for b in FLAGS.blocks]:
        runs = [engine_run(chains, generations, m, block, FLAGS.chunk_generations) for _ in repeats]
        compile_seconds, engine = runs[0][0], min(r[1] for r in runs)
        print(
            f"engine chain_block={block:5d}: {engine * 1e3:9.2f} ms/generation (compile {compile_seconds:.2f} s) | "
            f"vs (a) {loop / engine:6.1f}x faster | vs (b) {vectorized / engine:5.2f}x faster | "
            f"{engine / floor:5.2f}x the RNG floor"
        )


if __name__ == "__main__":
    _define_flags()
    app.run(main)
