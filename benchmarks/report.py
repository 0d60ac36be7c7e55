"""Report at the speed of the simulation: the plots and report.md of a run against the run's own simulation time.

python -m benchmarks.report [--chains=10000 --generations=300 --repeats=2]
Simulation time: wall seconds of `python -m experiments.main` on the shipped Gaussian config (replace, rho = 0) with
make_plots = False, start-up, imports and compile included: the run as a user waits for it. Report time: in a fresh
process that has loaded the run's results, plots.write_report (its matplotlib import, the summaries, every figure and
report.md), the cost the run itself pays after its last generation. Also printed: the run with its default plots minus
the run without (the same cost seen from outside, noisier), `python -m experiments.plot` on the workdir (a fresh
interpreter and its imports), and the report's parts. Target: report <= 0.25x the simulation.

Small run (--small_run, default on): `python -m experiments.plot` on the shipped Gaussian config at 16 seeds x 20
generations (two regimes x two real fractions, 64 chains, 9 figures), wall seconds in a fresh process as a user waits
for it, best of --repeats. Target: <= 2 s (run.json records the family's error-source switches, so the report imports
no family and no jax).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl import app, flags

from benchmarks.end_to_end import CONFIG_PATH, main_command, wall_seconds
from benchmarks.timing import interleaved_best, print_table, row

# Seconds a small run's report and plots may take to regenerate (python -m experiments.plot, fresh process).
SMALL_RUN_TARGET_SECONDS = 2.0
SMALL_RUN = ("--config.seeds=16", "--config.num_generations=20")

# Run in a fresh interpreter so the report pays its own imports (matplotlib), as the run that writes it does.
REPORT_TIMER = """
import json, sys, time
from collapse_jax.analysis import plots, results
run = results.load(sys.argv[1])
started = time.perf_counter()
plots.write_report(sys.argv[1], run)
report = time.perf_counter() - started
started = time.perf_counter()
plots.summaries(run)
print(json.dumps({"report": report, "summaries": time.perf_counter() - started}))
"""


def report_seconds(workdir: str) -> dict[str, float]:
    """{"report": s of plots.write_report in a fresh process, "summaries": s of every metric's summary (again)}."""
    done = subprocess.run([sys.executable, "-c", REPORT_TIMER, workdir], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fresh(timer, workdir: str):
    """`timer` run on an emptied `workdir` (the report timers then read the last one it wrote)."""

    def timed() -> float:
        shutil.rmtree(workdir, ignore_errors=True)
        return timer()

    return timed


def measure(chains: int, generations: int, repeats: int) -> list[dict]:
    """Simulation and report seconds of one chains x generations run, side by side, best of `repeats` rounds."""
    with tempfile.TemporaryDirectory(prefix="collapse_report_") as root:
        quiet, plotted = os.path.join(root, "quiet"), os.path.join(root, "plotted")
        parts: dict[str, float] = {}

        def report() -> float:
            seconds = report_seconds(quiet)
            parts["summaries"] = min(parts.get("summaries", float("inf")), seconds["summaries"])
            return seconds["report"]

        timers = {
            "simulation": lambda: wall_seconds(main_command(quiet, chains, generations, plots=False)),
            "report": report,
            "with_plots": lambda: wall_seconds(main_command(plotted, chains, generations)),
            "plot_cli": lambda: wall_seconds([sys.executable, "-m", "experiments.plot", f"--workdir={quiet}"]),
        }
        # A rerun of a finished workdir resumes at its end: every round starts from an empty one.
        for name in ("simulation", "with_plots"):
            timers[name] = _fresh(timers[name], quiet if name == "simulation" else plotted)
        best = interleaved_best(timers, repeats)
    simulation, label = best["simulation"], f"({chains} chains x {generations} generations)"
    load = os.getloadavg()
    with_plots, share = best["with_plots"] - simulation, best["report"] / simulation
    return [
        row(f"simulation: experiments.main, no plots {label}", simulation, "s (wall, compile in)"),
        row("report + plots (write_report, imports in) / simulation", best["report"], "s", share, 0.25),
        row("  of which the summaries of every metric", parts["summaries"], "s"),
        row("  per chain x generation", best["report"] / (chains * (generations + 1)) * 1e9, "ns"),
        # Two whole runs' difference: seconds of start-up and compile noise under load, so no target.
        row("run with default plots - run without (noisy)", with_plots, "s", with_plots / simulation),
        row("experiments.plot on the workdir (fresh process)", best["plot_cli"], "s", best["plot_cli"] / simulation),
        row("load average (1 min; 5, 15 min) at the end", load[0], f"{load[1]:.2f}, {load[2]:.2f}"),
    ]


def small_run_rows(repeats: int) -> list[dict]:
    """Wall seconds of `python -m experiments.plot` on a 16-seed x 20-generation Gaussian run (fresh process), against
    SMALL_RUN_TARGET_SECONDS."""
    with tempfile.TemporaryDirectory(prefix="collapse_report_small_") as root:
        workdir = os.path.join(root, "run")
        command = [sys.executable, "-m", "experiments.main", f"--config={CONFIG_PATH}", f"--workdir={workdir}"]
        subprocess.run([*command, *SMALL_RUN, "--config.make_plots=False"], check=True, capture_output=True)
        plot = [sys.executable, "-m", "experiments.plot", f"--workdir={workdir}"]
        best = interleaved_best({"plot": lambda: wall_seconds(plot)}, repeats)
    load = os.getloadavg()
    target = SMALL_RUN_TARGET_SECONDS
    return [
        row("experiments.plot, 16 seeds x 20 gens (fresh) / 2 s", best["plot"], "s (wall)", best["plot"] / target, 1),
        row("load average (1 min; 5, 15 min) at the end", load[0], f"{load[1]:.2f}, {load[2]:.2f}"),
    ]


def _define_flags() -> None:
    """Command-line flags, defined only when this file is the program."""
    flags.DEFINE_integer("chains", 10_000, "Seeds = chains.")
    flags.DEFINE_integer("generations", 300, "Generations of the run.")
    flags.DEFINE_integer("repeats", 2, "Rounds of every measurement (interleaved; the best counts).")
    flags.DEFINE_bool("small_run", True, "Also time experiments.plot on a 16-seed x 20-generation run (target 2 s).")
    flags.DEFINE_bool("big_run", True, "Time the report against the simulation at --chains x --generations.")


def main(argv):
    del argv
    f = flags.FLAGS
    rows = small_run_rows(max(f.repeats, 3)) if f.small_run else []
    print_table(rows + (measure(f.chains, f.generations, f.repeats) if f.big_run else []))


if __name__ == "__main__":
    _define_flags()
    app.run(main)
