"""Chain-generations per second with model.sampling = "points" vs "statistics" (Gaussian d = 1, discrete K = 6, replace)
at M = 10^2, 10^4, 10^6, side by side in one process; ratio = statistics / points (target >= 100 at M = 10^4).

python -m benchmarks.statistics_sampling [--quick]

Measured on the idle 2-core CPU (load < 1), full mode, chain-generations/s (points mode draws through the unrolled
threefry, statistics mode through the exact multinomial; BUILD_NOTES "Performance"):
  gaussian  M=10^2 points 7.9e5, statistics 8.1e5 (1.0x); M=10^4 1.21e4 vs 1.97e6 (163x); M=10^6 81 vs 1.56e6
  discrete  M=10^2 points 1.07e6, statistics 9.9e5 (0.9x); M=10^4 2.01e4 vs 1.40e6 (69.6x); M=10^6 118 vs 1.42e6
Discrete M = 10^4 at other chain counts (same machine): statistics 1.57e6 (1,024 chains), 1.92e6 (4,096), 2.0e6
(16,384); points 2.35e4 (64 chains), 1.46e4 (256): ~85x at the best of each. The 100x target is missed against the
current points mode, which is 2.6x faster than the 7,854/s the target was set against (statistics is 178-250x that).
"""

from __future__ import annotations

import time

import jax
import numpy as np
from absl import app, flags, logging

from collapse_jax.host import runner, sweep
from experiments.configs import discrete, gaussian

SAMPLE_SIZES = (100, 10_000, 1_000_000)
# (chains, timed chunks of `generations`) per (mode, M): points mode costs O(M) per chain-generation, so its chain count
# shrinks with M to keep each timing at a few seconds on a 2-core CPU; statistics mode costs the same at every M.
SIZES = {
    "points": {100: (1024, 20), 10_000: (64, 5), 1_000_000: (4, 2)},
    "statistics": {100: (1024, 20), 10_000: (1024, 20), 1_000_000: (1024, 20)},
}
CONFIGS = {"gaussian": gaussian.get_config, "discrete": discrete.get_config}
TARGET_AT = 10_000  # the target: statistics >= 100x points at M = 10^4


def chain_generations_per_second(family: str, sampling: str, m: int, chains: int, generations: int, repeats: int):
    """Steady-state chain-generations/s of the engine's compiled chunk (compile and the first chunk excluded)."""
    overrides = {
        "regime.name": "replace",
        "regime.real_fraction": 0.0,
        "seeds": chains,
        "num_generations": (repeats + 1) * generations,
        "samples_per_generation": m,
        "chain_block": chains,
        "chunk_generations": generations,
        "model.sampling": sampling,
        # Generation 0 fits the real data (always points): 1000 of them, so the timed generations are the same work
        # and 1024 chains x 10^6 real points (4 GB, 20 GB with temporaries) do not have to fit in memory.
        "model.real_data_size": 1000,
    }
    if family == "gaussian":
        overrides["model.test_size"] = 1000
    group = sweep.expand(runner.as_config(overrides, CONFIGS[family]()))[0]
    engine = runner.build_engine(group)
    knobs = runner.padded_knobs(group.knobs, chains)
    init_all, chunk_all = engine.compile()
    state, _ = init_all(knobs)
    state, metrics = chunk_all(state, knobs, np.int32(1))  # compile + warm-up
    jax.block_until_ready(metrics)
    best = float("inf")
    for repeat in range(repeats):
        started = time.perf_counter()
        state, metrics = chunk_all(state, knobs, np.int32(1 + (repeat + 1) * generations))
        jax.block_until_ready(metrics)
        best = min(best, time.perf_counter() - started)  # the machine is shared: the fastest repeat is the cost
    return chains * generations / best


def run(quick: bool) -> list[dict]:
    """Rows (name, value, unit, ratio, target): chain-generations/s per (family, M, mode); ratio on statistics rows."""
    repeats = 1 if quick else 3
    rows = []
    for family in CONFIGS:
        for m in SAMPLE_SIZES:
            rates = {}
            for sampling in ("points", "statistics"):
                chains, generations = SIZES[sampling][m]
                if quick:
                    generations = max(1, generations // 2)
                rates[sampling] = chain_generations_per_second(family, sampling, m, chains, generations, repeats)
                logging.info("%s M=%d %s: %.4g chain-generations/s", family, m, sampling, rates[sampling])
            for sampling, rate in rates.items():
                statistics_row = sampling == "statistics"
                rows.append(
                    {
                        "name": f"statistics_sampling {family} M={m} {sampling}",
                        "value": rate,
                        "unit": "chain-generations/s",
                        "ratio": rates["statistics"] / rates["points"] if statistics_row else None,
                        "target": 100.0 if statistics_row and m == TARGET_AT else None,
                    }
                )
    return rows


def suite_rows(quick: bool) -> list[dict]:
    """run()'s rows as benchmarks.suite table rows (PASS when statistics/points >= the target), then
    benchmarks/multinomial.py's (the discrete family's multinomial alone, old vs new)."""
    from benchmarks import multinomial, timing

    rows = [timing.row(r["name"], r["value"], r["unit"], r["ratio"], r["target"], at_most=False) for r in run(quick)]
    return rows + multinomial.suite_rows(quick)  # the multinomial alone, before vs now


def main(argv):
    del argv
    rows = run(flags.FLAGS.quick)
    print(f"{'name':<48} {'chain-generations/s':>20} {'ratio':>9} {'target':>7}")
    for row in rows:
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.1f}x"
        target = "" if row["target"] is None else f">={row['target']:.0f}x"
        print(f"{row['name']:<48} {row['value']:>20.4g} {ratio:>9} {target:>7}")


if __name__ == "__main__":
    flags.DEFINE_bool("quick", False, "Fewer generations and one repeat per timing.")
    app.run(main)
