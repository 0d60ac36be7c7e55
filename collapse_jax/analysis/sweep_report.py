"""The sweep report: one table and report.md with plots over a sweep's shards (or several runs), partial or finished.

Figures: each metric vs generation per knob group, and the final generation vs every swept knob with quantile bands
and breakdown markers (plots.strength_sections).
"""

from __future__ import annotations

import os

from collapse_jax.analysis import aggregate, breakdown, error_sources, panels, plots
from collapse_jax.analysis.results import Results
from collapse_jax.store.workdir_io import PREEMPTED_EXIT_CODE


def final_vs_real_fraction(results: Results, metric: str) -> list[dict]:
    """Per combination of the other knobs: real fractions and the final generation's median, 10%, 90% over seeds."""
    return breakdown.final_vs_knob(results, metric, "real_fraction")


def _status_lines(status: dict) -> list[str]:
    lines = ["| shard | chains | state |", "|---|---|---|"]
    for row in status["shards"]:
        state, code = row["state"], row["exit_status"]
        if code not in (None, 0):  # recorded by the backend: 75 = stopped by a preemption signal, checkpointed
            state += f" (last exit status {code}{', preempted' if code == PREEMPTED_EXIT_CODE else ''})"
        lines.append(f"| {row['shard']} | {row['chains']} | {state} |")
    return [
        *lines,
        "",
        f"Missing chains (shard not started): {status['missing_chains']}.",
        f"Chains with unfinished generations: {status['unfinished_chains']}.",
    ]


def report(workdirs: list[str], output: str | None = None, table_format: str = "auto", make_plots: bool = True) -> str:
    """Merge the runs under `workdirs`, write the table, plots and report.md into `output`; returns report.md's path.

    Default output: ROOT for one sweep ROOT, <workdir>/aggregate for one run or folder of runs; required otherwise.
    """
    sources, statuses = aggregate.sources(workdirs)
    if output is None:
        if len(workdirs) > 1:
            raise ValueError("--output: required when aggregating several --workdir values")
        output = workdirs[0] if statuses[0][1] is not None else os.path.join(workdirs[0], "aggregate")
    merged, loaded = aggregate.load_sources(sources)
    breakdown.settings(merged.config, list(merged.metrics))  # a bad config.report fails before anything is written
    os.makedirs(os.path.join(output, "plots"), exist_ok=True)
    table = aggregate.write_table(aggregate.long_table(merged), os.path.join(output, "results"), table_format)
    metrics = [m for m in merged.metrics if m != "failed"]
    final = int(merged.generations[-1])
    shared = plots.summaries(merged)
    lines = [
        *plots.opening(merged, f"Sweep report: {merged.config['model']['name']}", shared),
        f"{merged.num_chains} chains from {len(loaded)} runs; horizon {final} generations; "
        f"failed (non-finite) chains: {int(merged.failed.sum())}.",
        f"Table (one row per chain x generation, with knobs): `{os.path.relpath(table, output)}`.",
        "",
    ]
    for workdir, manifest in statuses:
        if manifest is None:
            continue
        exit_statuses = {s["workdir"]: aggregate.read_exit_status(s["workdir"]) for s in manifest["shards"]}
        status = aggregate.sweep_status(manifest, loaded, exit_statuses)
        verdict = "complete" if status["complete"] else "INCOMPLETE: aggregated what exists"
        lines += [f"## Sweep {workdir}: {manifest['num_jobs']} shards, {manifest['total_chains']} chains, {verdict}"]
        lines += ["", *_status_lines(status), ""]
    figures: list = []  # drawn together (panels.draw_all: on two cores when one is free)
    for metric in metrics:
        lines += [f"## {metric}", ""]
        if make_plots:
            path = os.path.join(output, "plots", f"{metric}_vs_generation.png")
            panels.later(figures, plots.plot_metric, merged, metric, path, shared[metric])
            lines += [f"![{metric} vs generation](plots/{metric}_vs_generation.png)", ""]
    lines += plots.strength_sections(merged, output, make_plots, figures)
    panels.draw_all(figures)  # before error_sources, which may import the family (jax): see plots.write_report
    lines += error_sources.section(merged, output, make_plots)
    path = os.path.join(output, "report.md")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path
