"""End to end: marginal time per generation of `python -m experiments.main` on the shipped Gaussian config.

python -m benchmarks.end_to_end [--chains=10000 --short=50 --long=650 --repeats=2 --quick --noplots]
Only seeds, regime (replace) and real_fraction (0) change from experiments/configs/gaussian.py (M = 100, chunk "auto",
chain_block "auto", checkpoint_every "auto"); the default plots and report.md are on, as a user runs it (--noplots: the
generations alone). Marginal = (wall(long) - wall(short)) / (long - short), which cancels start-up and compile, not
the report's share that grows with generations. Measured in the same process, in turn: the hand-fused step
(benchmarks/references.py; with the engine's unrolled generator and with jax.random.normal), vectorized float32 numpy
and a per-chain numpy loop (benchmarks/gaussian_engine.py).
Targets: <= 1.2x the faster of the two fused steps, >= 1.2x faster than vectorized numpy, >= 15x faster than the
per-chain loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

from benchmarks import gaussian_engine, references
from benchmarks.timing import ChunkTimer, interleaved_best, print_table, row
from collapse_jax.models.base import make_model
from experiments.configs import gaussian

CONFIG_PATH = "experiments/configs/gaussian.py"


def main_command(workdir: str, chains: int, generations: int, plots: bool = True) -> list[str]:
    """`python -m experiments.main` on the shipped Gaussian config under replace, rho = 0; plots False turns the
    shipped make_plots = True off."""
    return [
        sys.executable,
        "-m",
        "experiments.main",
        f"--config={CONFIG_PATH}",
        f"--workdir={workdir}",
        "--config.regime.name=replace",
        "--config.regime.real_fraction=0.0",
        f"--config.seeds={chains}",
        f"--config.num_generations={generations}",
        *([] if plots else ["--config.make_plots=False"]),
    ]


def wall_seconds(command: list[str]) -> float:
    """Wall seconds of one command in a fresh process (start-up and imports included, as a user waits for it)."""
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def main_wall_seconds(chains: int, generations: int, plots: bool = True) -> float:
    """Wall seconds of one fresh `python -m experiments.main` run in a new temporary workdir."""
    with tempfile.TemporaryDirectory(prefix="collapse_e2e_") as workdir:
        return wall_seconds(main_command(os.path.join(workdir, "run"), chains, generations, plots))


def measure(chains: int, short: int, long: int, loop_chains: int, repeats: int, plots: bool = True) -> list[dict]:
    """Marginal ms/generation of experiments.main (plots: with its report) and of the three same-work baselines, with
    the target ratios."""
    config = gaussian.get_config()
    m = config.samples_per_generation
    held_out = make_model(config).reference()  # the fixed held-out set behind nll_real_test
    # The fused step with the engine's generator (unrolled threefry, the same values; the strict comparison) and
    # with jax.random.normal (as a hand-written step would draw).
    fused, fused_jax = (
        references.GaussianReference(
            samples_per_generation=m,
            chunk_generations=50,
            test_mean=float(held_out["mean"][0]),
            test_variance=float(held_out["cov"][0, 0]),
            normal_draws=draws,
        )
        for draws in ("unrolled", "jax")
    )
    knobs = {"seed": np.arange(chains, dtype=np.int32), "sampling_bias": np.ones(chains, np.float32)}
    timers = {
        "short": lambda: main_wall_seconds(chains, short, plots),
        "long": lambda: main_wall_seconds(chains, long, plots),
        "fused": ChunkTimer(*fused.compile(), knobs, 50),
        "fused_jax": ChunkTimer(*fused_jax.compile(), knobs, 50),
        "numpy": lambda: gaussian_engine.vectorized_numpy(chains, 50, m),
        "loop": lambda: gaussian_engine.per_chain_numpy_loop(loop_chains, 20, m) * chains / loop_chains,
    }
    best = interleaved_best(timers, repeats)
    marginal = (best["long"] - best["short"]) / (long - short)
    label = f"({chains} chains, M = {m}, {'with' if plots else 'no'} plots)"
    return [
        row(
            f"end to end marginal {label}",
            marginal * 1e3,
            "ms/generation",
            chain_generations_per_s=chains / marginal,
            short_run_s=best["short"],
            long_run_s=best["long"],
        ),  # fmt: skip
        row(
            "end to end / fused step (same generator)",
            marginal * 1e3,
            "ms/generation",
            marginal / best["fused"],
            fused_ms=best["fused"] * 1e3,
        ),  # fmt: skip
        row(
            "end to end / fused step (jax.random.normal)",
            marginal * 1e3,
            "ms/generation",
            marginal / best["fused_jax"],
            fused_ms=best["fused_jax"] * 1e3,
        ),  # fmt: skip
        row(
            "end to end / the faster fused step",
            marginal * 1e3,
            "ms/generation",
            marginal / min(best["fused"], best["fused_jax"]),
            1.2,
            fused_ms=min(best["fused"], best["fused_jax"]) * 1e3,
        ),  # fmt: skip
        row(
            "vectorized numpy / end to end",
            best["numpy"] * 1e3,
            "ms/generation",
            best["numpy"] / marginal,
            1.2,
            at_most=False,
        ),  # fmt: skip
        row(
            f"per-chain numpy loop / end to end (scaled from {loop_chains})",
            best["loop"] * 1e3,
            "ms/generation",
            best["loop"] / marginal,
            15.0,
            at_most=False,
        ),  # fmt: skip
    ]


def run(quick: bool, repeats: int = 2, plots: bool = True) -> list[dict]:
    """The full measurement (10,000 chains, G 50 -> 650) or the quick one (G 10 -> 210).

    Both keep 10,000 chains: the start-up, compile and plots of a run vary by a few tenths of a second between
    processes on an idle machine and by seconds under load, so the timed difference must be several seconds of
    generations (2,000 chains x 80 generations came out negative on a shared 2-core CPU; G 50 -> 250, 1.2 s of
    generations, gave 8.2-13.5 ms/generation in three idle runs of the same code).
    """
    return measure(10_000, 10, 210, 20, repeats, plots) if quick else measure(10_000, 50, 650, 20, repeats, plots)


def _define_flags() -> None:
    """Command-line flags, defined only when this file is the program (the suite imports its functions)."""
    flags.DEFINE_integer("chains", 10_000, "Seeds = chains.")
    flags.DEFINE_integer("short", 50, "G1: generations of the short run.")
    flags.DEFINE_integer("long", 650, "G2: generations of the long run.")
    flags.DEFINE_integer("loop_chains", 20, "Chains the per-chain numpy loop runs (scaled to --chains).")
    flags.DEFINE_integer("repeats", 2, "Rounds of every measurement (interleaved; the best counts).")
    flags.DEFINE_bool("quick", False, "G1 = 10, G2 = 210, two rounds.")
    flags.DEFINE_bool("plots", True, "make_plots as the shipped config has it (--noplots: the generations alone).")


def main(argv):
    del argv
    f = flags.FLAGS
    if f.quick:
        rows = run(quick=True, repeats=f.repeats, plots=f.plots)
    else:
        rows = measure(f.chains, f.short, f.long, f.loop_chains, f.repeats, f.plots)
    print_table(rows)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
