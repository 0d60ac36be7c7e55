"""Exact multinomial counts per chain: collapse_jax/models/_multinomial.py's jit(vmap(draw_multinomial_counts)) over
C chains against numpy's vectorized Generator.multinomial drawing the same C multinomials, side by side in one process;
K = 6 Zipf(1) probabilities (the discrete family's default truth), n = 10^2, 10^4, 10^6; interleaved repeats, fastest.

python -m benchmarks.multinomial [--quick] [--chains=4096] [--repeats=15] [--normal_draws]

Reports microseconds per chain (one multinomial = K - 1 = 5 binomials) of wall time and of process CPU time (all
threads): the machine is shared, and CPU time is the steadier of the two under load. --normal_draws instead times one
float32 normal draw (10^6 at once, interleaved): jax.random.normal with the threefry, rbg and unsafe_rbg keys, the
unrolled Threefry-2x32-20 of collapse_jax/models/_multinomial.py with jax's erfinv transform, and numpy's
default_rng().standard_normal (BUILD_NOTES, "The multinomial's remaining cost").
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from collapse_jax.models import _multinomial

COUNTS = (100.0, 10_000.0, 1_000_000.0)
NUM_OUTCOMES = 6


def _timer(function, *args):
    """A callable returning (wall seconds, process CPU seconds) of one blocking call."""

    def call():
        wall, cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(function(*args))
        return time.perf_counter() - wall, time.process_time() - cpu

    jax.block_until_ready(function(*args))  # compile + warm-up
    return call


def run(quick: bool, chains: int = 4096, repeats: int = 15) -> list[dict]:
    """Rows per n: us per chain (wall and CPU) for numpy and jax, and the ratios numpy / jax."""
    if quick:
        chains, repeats = min(chains, 1024), min(repeats, 5)
    zipf = np.arange(1, NUM_OUTCOMES + 1, dtype=np.float64) ** -1.0
    zipf /= zipf.sum()
    probabilities = jnp.broadcast_to(jnp.asarray(zipf, jnp.float32), (chains, NUM_OUTCOMES))
    keys = jax.random.split(jax.random.key(0), chains)
    compiled = jax.jit(jax.vmap(_multinomial.draw_multinomial_counts))
    generator = np.random.default_rng(0)
    rows = []
    for count in COUNTS:
        counts = jnp.full((chains,), count, jnp.float32)
        host_counts = np.full(chains, int(count))
        timers = {
            "numpy": _timer(generator.multinomial, host_counts, zipf),  # [chains, K]: every count drawn
            "now": _timer(compiled, keys, probabilities, counts),
        }
        best = {name: [float("inf"), float("inf")] for name in timers}
        for _ in range(repeats):  # interleaved: both see the same machine load
            for name, timer in timers.items():
                best[name] = [min(old, new) for old, new in zip(best[name], timer())]
        per_chain = {name: [1e6 * seconds / chains for seconds in value] for name, value in best.items()}
        rows.append(
            {
                "n": count,
                "numpy_wall_us": per_chain["numpy"][0],
                "now_wall_us": per_chain["now"][0],
                "numpy_cpu_us": per_chain["numpy"][1],
                "now_cpu_us": per_chain["now"][1],
                "wall_ratio": per_chain["numpy"][0] / per_chain["now"][0],
                "cpu_ratio": per_chain["numpy"][1] / per_chain["now"][1],
            }
        )
    return rows


def normal_draw_costs(draws: int = 1_000_000, repeats: int = 20) -> dict[str, tuple[float, float]]:
    """(wall, CPU) nanoseconds per float32 normal draw, fastest of interleaved repeats, per generator."""

    def unrolled_threefry_normal(key):  # jax.random.normal's transform on the unrolled generator's uniforms
        counter = jnp.arange(draws // 2, dtype=jnp.int32)
        words = jnp.broadcast_to(jax.random.key_data(key), (draws // 2, 2))
        uniform = jnp.concatenate(_multinomial._lane_uniforms(words, counter, jnp.zeros_like(counter)))
        lowest = jnp.nextafter(jnp.float32(-1.0), jnp.float32(0.0))
        return jnp.sqrt(jnp.float32(2.0)) * jax.lax.erf_inv(jnp.maximum(lowest, 2.0 * uniform - 1.0))

    def jax_normal(key):
        return jax.random.normal(key, (draws,), jnp.float32)

    generator = np.random.default_rng(0)
    timers = {
        f"jax.random.normal {impl}": _timer(jax.jit(jax_normal), jax.random.key(0, impl=impl))
        for impl in ("threefry2x32", "rbg", "unsafe_rbg")
    }
    timers["unrolled threefry + erfinv"] = _timer(jax.jit(unrolled_threefry_normal), jax.random.key(0))
    timers["numpy default_rng"] = _timer(lambda: generator.standard_normal(draws, dtype=np.float32))
    best = {name: [float("inf"), float("inf")] for name in timers}
    for _ in range(repeats):
        for name, timer in timers.items():
            best[name] = [min(old, new) for old, new in zip(best[name], timer())]
    return {name: (1e9 * wall / draws, 1e9 * cpu / draws) for name, (wall, cpu) in best.items()}


def suite_rows(quick: bool) -> list[dict]:
    """run()'s rows as benchmarks.suite table rows: us per chain, ratio = numpy / jax (wall)."""
    from benchmarks import timing

    return [
        timing.row(f"multinomial K=6 n={r['n']:.0e} (numpy {r['numpy_wall_us']:.2f} us)", r["now_wall_us"],
                   "us/chain", r["wall_ratio"], None)
        for r in run(quick)
    ]  # fmt: skip


def main(argv):
    del argv
    if flags.FLAGS.normal_draws:
        costs = normal_draw_costs()
        wall_numpy, cpu_numpy = costs["numpy default_rng"]
        for name, (wall, cpu) in costs.items():
            print(f"{name:32s} wall {wall:6.2f} ns/draw ({wall / wall_numpy:.2f}x numpy)  "
                  f"CPU {cpu:6.2f} ns/draw ({cpu / cpu_numpy:.2f}x numpy)")  # fmt: skip
        return
    rows = run(flags.FLAGS.quick, flags.FLAGS.chains, flags.FLAGS.repeats)
    print(f"{'n':>9} {'numpy wall':>12} {'jax wall':>9} {'ratio':>7} {'numpy cpu':>11} {'jax cpu':>8} {'ratio':>7}"
          "   (us per chain)")  # fmt: skip
    for r in rows:
        print(
            f"{r['n']:>9.0e} {r['numpy_wall_us']:>12.2f} {r['now_wall_us']:>9.2f} {r['wall_ratio']:>6.1f}x "
            f"{r['numpy_cpu_us']:>11.2f} {r['now_cpu_us']:>8.2f} {r['cpu_ratio']:>6.1f}x"
        )


if __name__ == "__main__":
    flags.DEFINE_bool("quick", False, "1024 chains and 5 repeats.")
    flags.DEFINE_integer("chains", 4096, "Chains (one multinomial each) per call.")
    flags.DEFINE_integer("repeats", 15, "Interleaved repeats; the fastest of each is reported.")
    flags.DEFINE_bool("normal_draws", False, "Time one float32 normal draw per generator instead (10^6 at once).")
    app.run(main)
