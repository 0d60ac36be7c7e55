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

from collapse_jax.analysis import breakdown, error_sources  # noqa: E402
from collapse_jax.analysis.breakdown import knob_label  # noqa: E402, F401  (plots.knob_label: image_grids uses it)
from collapse_jax.analysis.results import Results  # noqa: E402


def _spans_decades(rows: list[dict]) -> bool:
    values = np.concatenate([np.ravel(r[k]) for r in rows for k in ("q10", "q90") if r[k] is not None])
    values = values[np.isfinite(values)]
    return values.size > 0 and values.min() > 0 and values.max() / values.min() > 100


def plot_metric(results: Results, metric: str, path: str) -> None:
    """Median and 10-90% band of `metric` per knob group against generation."""
    rows = [r for r in results.summary(metric) if r["median"] is not None]
    figure, axis = plt.subplots(figsize=(7, 4.2))
    generations = results.generations  # every k-th generation when config.record_every = k
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
            generation = int(results.generations[g])
            cells.append(f"{row['median'][g]:.4g} [{row['q10'][g]:.3g}, {row['q90'][g]:.3g}] @{generation}")
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
    last = int(results.generations[computed[-1]]) if len(computed) else -1
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
        *strength_sections(results, workdir),
        *error_sources.section(results, workdir),
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


def _boundary_text(knob: str, verdict: dict) -> str:
    """One table cell: the breakdown strength, or why a line has none."""
    if verdict["status"] == "crossing":
        side = "higher is safer" if verdict["direction"] == "higher_is_safer" else "lower is safer"
        return f"{knob} = {verdict['boundary']:.4g} ({side})"
    return {
        "always_within": "none: within the band at every swept value",
        "never_within": "none: outside the band at every swept value",
        "collapses_at_safe_end": "none: outside the band at the safe end",
        "non_monotone": "none: both ends within or both outside (non-monotone)",
        "no_baseline": "n/a: generation-0 median not resolved from 0 (relative band undefined)",
    }[verdict["status"]]


def plot_final_vs_knob(
    lines: list[dict],
    verdicts: list[dict],
    metric: str,
    knob: str,
    final: int,
    path: str,
    tolerance: float,
    reference_lines: tuple = (),
) -> None:
    """Final-generation median vs `knob` per line with its 10-90% band over seeds, dotted breakdown markers, the
    generation-0 tolerance band (grey, when the lines share one generation-0 level) and dashed theory overlays."""
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    colors = plt.cm.viridis(np.linspace(0, 0.92, len(lines))) if len(lines) > 10 else [None] * len(lines)
    for line, verdict, color in zip(lines, verdicts, colors):
        value, median, q10, q90, _ = (np.asarray(column) for column in zip(*line["points"]))
        label = f"{knob_label(line['labels'])} (n={line['points'][0][4]})"
        (drawn,) = axis.plot(value, median, marker="o", markersize=3, color=color, label=label)
        if len(lines) <= 12:  # beyond a dozen lines overlapping bands hide the medians; the table keeps the quantiles
            axis.fill_between(value, q10, q90, color=drawn.get_color(), alpha=0.15, linewidth=0)
        if verdict["boundary"] is not None:
            axis.axvline(verdict["boundary"], color=drawn.get_color(), linestyle=":", linewidth=1.2)
    baselines = np.concatenate([line["baselines"] for line in lines])
    level = np.median(baselines) if baselines.size else np.nan
    if np.isfinite(level) and level != 0 and np.all(np.abs(baselines - level) <= 0.1 * abs(level)):
        low, high = sorted((level - tolerance * abs(level), level + tolerance * abs(level)))
        axis.axhspan(low, high, color="grey", alpha=0.12, label=f"generation 0 median +-{tolerance:g} (relative)")
    for reference_knob, value, text in reference_lines:
        if reference_knob == knob:
            axis.axvline(value, color="black", linestyle="--", linewidth=1, label=text)
    rows = [{"q10": [p[2] for p in line["points"]], "q90": [p[3] for p in line["points"]]} for line in lines]
    if rows and _spans_decades(rows):
        axis.set_yscale("log")
    axis.set_xlabel(f"{knob} (dotted: breakdown of the line in its colour)")
    axis.set_ylabel(f"{metric} at generation {final}")
    if len(lines) <= 12:
        axis.set_title(f"{metric} at the final generation vs {knob}: median over seeds, 10-90% band", fontsize=9)
        axis.legend(fontsize=6, loc="best")
    else:
        axis.set_title(
            f"{metric} at the final generation vs {knob}: medians of {len(lines)} lines (bands, labels: "
            "report.md table)",
            fontsize=9,
        )
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def strength_sections(results: Results, output: str, make_plots: bool = True) -> list[str]:
    """report.md sections: per primary metric (config.report.metrics) and numeric swept knob, final metric vs the knob
    (figure under output/plots) and a table of each line's breakdown strength (collapse_jax.analysis.breakdown)."""
    settings = breakdown.settings(results.config, list(results.metrics))
    knobs = breakdown.numeric_swept_knobs(results)
    if settings.knobs is not None:
        knobs = [k for k in settings.knobs if k in knobs]
    final = int(results.generations[-1])  # the last column's generation
    lines_out = []
    if knobs and settings.metrics:
        lines_out += [
            f"## Final generation vs mitigation strength (breakdown band: |final - gen0| <= t |gen0|, "
            f"t = {settings.collapse_tolerance:g}"
            + "".join(f", {m}: {t:g}" for m, t in settings.metric_tolerances.items())
            + ")",
            "",
            "Each line: one combination of the other swept knobs and static labels; generation-0 (gen0) and final "
            "medians over its seeds. Breakdown: where the final median leaves the band, linearly interpolated "
            "between the two sweep points that bracket the crossing (collapse_jax/analysis/breakdown.py).",
            "",
        ]
    for metric in settings.metrics:
        for knob in knobs:
            lines = breakdown.final_vs_knob(results, metric, knob)
            if not lines:
                continue
            direction = settings.directions.get(knob, "auto")
            tolerance = settings.tolerance(metric)
            verdicts = [breakdown.line_breakdown(line, tolerance, direction) for line in lines]
            lines_out += [f"### {metric} vs {knob}", ""]
            if make_plots:
                name = f"{metric}_final_vs_{knob}.png"
                plot_final_vs_knob(
                    lines,
                    verdicts,
                    metric,
                    knob,
                    final,
                    os.path.join(output, "plots", name),
                    tolerance,
                    settings.reference_lines,
                )
                lines_out += [f"![{metric} at generation {final} vs {knob}](plots/{name})", ""]
            lines_out += [
                f"| line | breakdown | all crossings | {knob} values | gen0 median | final median [10%, 90%] |",
                "|---|---|---|---|---|---|",
            ]
            for line, verdict in zip(lines, verdicts):
                points = line["points"]
                values = ", ".join(f"{p[0]:g}" for p in points)
                crossings = ", ".join(f"{c:.4g}" for c in verdict["crossings"]) or "-"
                gen0 = ", ".join(dict.fromkeys(f"{b:.3g}" for b in line["baselines"]))  # once where all agree
                finals = ", ".join(f"{p[1] + 0.0:.3g} [{p[2] + 0.0:.3g}, {p[3] + 0.0:.3g}]" for p in points)  # no -0
                lines_out.append(
                    f"| {knob_label(line['labels'])} | {_boundary_text(knob, verdict)} | {crossings} | {values} | "
                    f"{gen0} | {finals} |"
                )
            lines_out.append("")
    return lines_out
