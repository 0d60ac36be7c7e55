"""Figures and report.md made from a run's results (never from live state), so any workdir can be re-plotted.

One PNG per metric: median per knob group vs generation with its 10-90% band; log scale where the metric spans decades.
"""

from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")  # headless machines and clusters have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from collapse_jax.results import Results  # noqa: E402


def knob_label(labels: dict) -> str:
    """Human-readable name of a knob group for legends and tables, e.g. 'real_fraction=0.1, regime=replace'."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in labels.items()) or "all chains"


def _spans_decades(rows: list[dict]) -> bool:
    values = np.concatenate([np.ravel(r[k]) for r in rows for k in ("q10", "q90") if r[k] is not None])
    values = values[np.isfinite(values)]
    return values.size > 0 and values.min() > 0 and values.max() / values.min() > 100


def plot_metric(results: Results, metric: str, path: str) -> None:
    """Median and 10-90% band of `metric` per knob group against generation."""
    rows = [r for r in results.summary(metric) if r["median"] is not None]
    figure, axis = plt.subplots(figsize=(7, 4.2))
    generations = np.arange(results.metrics[metric].shape[1])
    for row in rows:
        (line,) = axis.plot(generations, row["median"], label=f"{knob_label(row['labels'])} (n={row['chains']})")
        axis.fill_between(generations, row["q10"], row["q90"], color=line.get_color(), alpha=0.18, linewidth=0)
    if rows and _spans_decades(rows):
        axis.set_yscale("log")
    axis.set_xlabel("generation (0 = fit on real data)")
    axis.set_ylabel(metric)
    axis.set_title(f"{metric}: median over seeds, 10-90% band")
    if rows:
        axis.legend(fontsize=7, loc="best")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _final_table(results: Results, metrics: list[str]) -> list[str]:
    """Markdown table: per knob group, the last computed generation's median [10%, 90%] of each metric."""
    lines = ["| group | chains | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 2)]
    summaries = {m: results.summary(m) for m in metrics}
    for index, (labels, indices) in enumerate(results.knob_groups()):
        cells = []
        for metric in metrics:
            row = summaries[metric][index]
            finite = np.flatnonzero(np.isfinite(row["median"])) if row["median"] is not None else []
            if len(finite) == 0:
                cells.append("n/a")
                continue
            g = finite[-1]
            cells.append(f"{row['median'][g]:.4g} [{row['q10'][g]:.3g}, {row['q90'][g]:.3g}] @{g}")
        lines.append(f"| {knob_label(labels)} | {len(indices)} | " + " | ".join(cells) + " |")
    return lines


def write_report(workdir: str, results: Results) -> str:
    """Write <workdir>/plots/<metric>.png for every metric and <workdir>/report.md linking them; returns its path."""
    plot_dir = os.path.join(workdir, "plots")
    os.makedirs(plot_dir, exist_ok=True)
    metrics = [m for m in results.metrics if m != "failed"]
    for metric in metrics:
        plot_metric(results, metric, os.path.join(plot_dir, f"{metric}.png"))
    computed = np.flatnonzero(np.isfinite(results.metrics[metrics[0]]).any(axis=0)) if metrics else []
    last = int(computed[-1]) if len(computed) else -1
    lines = [
        f"# Collapse run: {results.config['model']['name']}",
        "",
        f"{results.num_chains} chains, generations computed: 0..{last} of {results.config['num_generations']}; "
        f"failed chains: {int(results.failed.sum())}.",
        "",
        "## Final generation (median [10%, 90%] over seeds, @generation)",
        "",
        *_final_table(results, metrics),
        "",
        "## Metrics vs generation",
        "",
        *[f"![{m}](plots/{m}.png)" for m in metrics],
        "",
        "## Config",
        "",
        "```json",
        json.dumps(results.config, indent=1),
        "```",
    ]
    path = os.path.join(workdir, "report.md")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path
