"""The sweep report: one table and report.md with plots over a sweep's shards (or several runs), partial or finished.

Figures: each metric vs generation per knob group, and the final generation vs real_fraction with quantile bands.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # headless machines and clusters have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from collapse_jax import aggregate, plots  # noqa: E402
from collapse_jax.results import Results  # noqa: E402
from collapse_jax.runner import PREEMPTED_EXIT_CODE  # noqa: E402


def final_vs_real_fraction(results: Results, metric: str) -> list[dict]:
    """Per combination of the other knobs: real fractions and the final generation's median, 10%, 90% over seeds."""
    final = results.metrics[metric].shape[1] - 1
    curves: dict[tuple, dict] = {}
    for row in results.summary(metric):
        labels = dict(row["labels"])
        rho = labels.pop("real_fraction")
        curve = curves.setdefault(tuple(labels.items()), {"labels": labels, "points": []})
        if row["median"] is not None and np.isfinite(row["median"][final]):
            point = (rho, row["median"][final], row["q10"][final], row["q90"][final], row["chains"])
            curve["points"].append(point)
    for curve in curves.values():
        curve["points"].sort()
    return [c for c in curves.values() if c["points"]]


def plot_final_vs_real_fraction(curves: list[dict], metric: str, final: int, path: str) -> None:
    """The 'how much real data is enough' curve: final-generation median vs real fraction, with its 10-90% band."""
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for curve in curves:
        rho, median, q10, q90, _ = (np.asarray(column) for column in zip(*curve["points"]))
        (line,) = axis.plot(rho, median, marker="o", label=plots.knob_label(curve["labels"]))
        axis.fill_between(rho, q10, q90, color=line.get_color(), alpha=0.18, linewidth=0)
    values = np.concatenate([[p[2] for p in c["points"]] + [p[3] for p in c["points"]] for c in curves])
    if values.size and values.min() > 0 and values.max() / values.min() > 100:
        axis.set_yscale("log")
    axis.set_xlabel("real_fraction (share of each generation's training data that is real)")
    axis.set_ylabel(f"{metric} at generation {final}")
    axis.set_title(f"{metric} at the final generation: median over seeds, 10-90% band")
    axis.legend(fontsize=7, loc="best")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


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
    sources, statuses = [], []
    for workdir in workdirs:
        if not os.path.isdir(workdir):
            raise ValueError(f"--workdir: {workdir} is not a directory")
        runs = aggregate.run_workdirs(workdir)
        name = os.path.basename(os.path.normpath(os.path.abspath(workdir)))
        # Runs found under one folder that is not a sweep are separate experiments: each is its own source.
        own = aggregate.load_manifest(workdir) is not None or runs == [workdir]
        sources += [aggregate.Source(name if own else os.path.relpath(run, workdir), run) for run in runs]
        statuses.append((workdir, aggregate.load_manifest(workdir)))
    if output is None:
        if len(workdirs) > 1:
            raise ValueError("--output: required when aggregating several --workdir values")
        output = workdirs[0] if statuses[0][1] is not None else os.path.join(workdirs[0], "aggregate")
    merged, loaded = aggregate.load_sources(sources)
    os.makedirs(os.path.join(output, "plots"), exist_ok=True)
    table = aggregate.write_table(aggregate.long_table(merged), os.path.join(output, "results"), table_format)
    metrics = [m for m in merged.metrics if m != "failed"]
    final = merged.metrics["failed"].shape[1] - 1
    lines = [
        f"# Sweep report: {merged.config['model']['name']}",
        "",
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
    varies_rho = "real_fraction" in merged.group_fields
    for metric in metrics:
        lines += [f"## {metric}", ""]
        if make_plots:
            plots.plot_metric(merged, metric, os.path.join(output, "plots", f"{metric}_vs_generation.png"))
            lines += [f"![{metric} vs generation](plots/{metric}_vs_generation.png)", ""]
        curves = final_vs_real_fraction(merged, metric) if varies_rho else []
        if curves:
            if make_plots:
                name = f"{metric}_final_vs_real_fraction.png"
                plot_final_vs_real_fraction(curves, metric, final, os.path.join(output, "plots", name))
                lines += [f"![{metric} at generation {final} vs real_fraction](plots/{name})", ""]
            lines += [
                f"| group | real_fraction | chains | median | 10% | 90% (generation {final}) |",
                "|---|---|---|---|---|---|",
            ]
            for curve in curves:
                for rho, median, q10, q90, count in curve["points"]:
                    label = plots.knob_label(curve["labels"])
                    lines.append(f"| {label} | {rho:g} | {count} | {median:.6g} | {q10:.6g} | {q90:.6g} |")
            lines.append("")
    path = os.path.join(output, "report.md")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path
