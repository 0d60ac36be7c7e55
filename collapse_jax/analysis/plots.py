"""Figures and report.md made from a run's results (never from live state), so any workdir can be re-plotted.

One PNG per metric: median per knob group vs generation with its 10-90% band; log scale where the metric spans decades.
"""

from __future__ import annotations

import json
import os

import numpy as np

from collapse_jax.analysis import breakdown, error_sources, image_grids, panels, profile
from collapse_jax.analysis.breakdown import knob_label
from collapse_jax.analysis.results import Results


def _spans_decades(rows: list[dict]) -> bool:
    values = np.concatenate([np.ravel(r[k]) for r in rows for k in ("q10", "q90") if r[k] is not None])
    values = values[np.isfinite(values)]
    return values.size > 0 and values.min() > 0 and values.max() / values.min() > 100


def plot_metric(results: Results, metric: str, path: str, summary: list[dict] | None = None) -> None:
    """Median and 10-90% band of `metric` per knob group against generation: one panel per group up to LEGEND_LINES
    groups, beyond that the medians only, in panels per value of the outermost knob; `summary` is
    results.summary(metric) when the caller has it already."""
    summary = results.summary(metric) if summary is None else summary
    rows = [r for r in summary if r["median"] is not None]
    generations = results.generations  # every k-th generation when config.record_every = k
    chains = sorted({r["chains"] for r in rows})
    seeds = f" (n={chains[0]} per line)" if len(chains) == 1 else ""
    settings = panels.fixed_settings(results.config)
    if panels.one_panel_per_line(len(rows)):
        names = [knob_label(r["labels"]) for r in rows]
        colours = panels.colours(names)
        figure, axes = panels.subplots(len(rows))
        handles: dict = {}
        for index, (axis, row) in enumerate(zip(axes, rows)):
            colour = colours[names[index]]
            panels.draw_other_medians(axis, [generations] * len(rows), [r["median"] for r in rows], index)
            axis.fill_between(generations, row["q10"], row["q90"], color=colour, alpha=0.25, linewidth=0, zorder=2)
            axis.plot(generations, row["median"], color=colour, zorder=3)
            axis.set_title(
                panels.panel_title(f"{names[index]} (n={row['chains']})" if not seeds else names[index]), fontsize=8
            )
        panels.line_panel_legend(handles, "black", len(rows) > 1, True)
        if _spans_decades(rows):
            panels.log_y(axes[0])
        title = f"{metric}: median over seeds{seeds} and 10-90% band, one panel per group\n{settings}"
        panels.finish(figure, axes, handles, path, title, "generation (0 = fit on real data)", metric)
        return
    field, groups = panels.split([r["labels"] for r in rows])
    figure, axes = panels.subplots(len(groups))
    names = [knob_label(panels.rest(r["labels"], field)) for r in rows]
    colours, handles = panels.colours(names), {}
    crowded = max((len(members) for _, members in groups), default=0) > panels.LEGEND_LINES
    scale = panels.colour_scale([r["labels"] for r in rows], field) if crowded else None
    for axis, (value, members) in zip(axes, groups):
        for index in members:
            row, colour = rows[index], colours[names[index]]
            if scale is not None:
                colour = panels.matplotlib_module().colormaps["viridis"](scale[1](row["labels"][scale[0]]))
            (line,) = axis.plot(generations, row["median"], color=colour)
            if len(members) <= panels.LEGEND_LINES:
                axis.fill_between(generations, row["q10"], row["q90"], color=colour, alpha=0.18, linewidth=0)
            handles.setdefault(names[index], line)
        if field is not None:
            axis.set_title(knob_label({field: value}), fontsize=8)
    if rows and _spans_decades(rows):
        panels.log_y(axes[0])
    title = f"{metric}: median over seeds{seeds}, 10-90% band\n{settings}"
    if crowded:
        coloured = f"coloured by {scale[0]}; " if scale is not None else ""
        title = (
            f"{metric}: median over seeds{seeds}, {len(rows)} groups ({coloured}labels: report.md profile)\n{settings}"
        )
    panels.finish(figure, axes, handles, path, title, "generation (0 = fit on real data)", metric, scale)


def summaries(results: Results) -> dict[str, list[dict]]:
    """results.summary of every metric but `failed`, computed once for the profile, the tables and the figures."""
    return results.summaries([metric for metric in results.metrics if metric != "failed"])


def opening(results: Results, title: str, summaries: dict[str, list[dict]] | None = None) -> list[str]:
    """The first lines of every report.md (a run's and experiments.report's): the title and the Collapse profile."""
    return [f"# {title}", "", *profile.markdown(results, profile.profile(results, summaries=summaries))]


def _final_table(results: Results, metrics: list[str], summaries: dict[str, list[dict]]) -> list[str]:
    """Markdown table: per knob group, the last computed generation's median [10%, 90%] of each metric."""
    lines = ["| group | chains | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 2)]
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
    shared = summaries(results)
    figures: list = []  # drawn together (panels.draw_all: on two cores when one is free)
    for metric in metrics:
        panels.later(figures, plot_metric, results, metric, os.path.join(plot_dir, f"{metric}.png"), shared[metric])
    strength = strength_sections(results, workdir, figures=figures)
    # Drawn before the error-sources section, which imports the family (jax) when run.json lacks its switches: a
    # process with jax is never forked.
    panels.draw_all(figures)
    computed = np.flatnonzero(np.isfinite(results.metrics[metrics[0]]).any(axis=0)) if metrics else []
    last = int(results.generations[computed[-1]]) if len(computed) else -1
    lines = [
        *opening(results, f"Collapse run: {results.config['model']['name']}", shared),
        f"{results.num_chains} chains, generations computed: 0..{last} of {results.config['num_generations']}; "
        f"failed chains: {int(results.failed.sum())}.",
        "",
        "## Final generation (median [10%, 90%] over seeds, @generation)",
        "",
        *_final_table(results, metrics, shared),
        "",
        "## Metrics vs generation",
        "",
        *[f"![{m}](plots/{m}.png)" for m in metrics],
        "",
        *strength,
        *error_sources.section(results, workdir),
        *image_grids.section(results, workdir),
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


# Why a line has no breakdown at all: the Collapse profile judges these metrics with an absolute band instead.
UNDEFINED = (
    "generation-0 median is not resolved from 0 at some swept value (|gen0| <= half its 10-90% spread: the relative "
    "band is undefined; the Collapse profile gives the absolute band)"
)


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
    settings: str = "",
) -> None:
    """Final-generation median vs `knob` per line with its 10-90% band over seeds, dotted breakdown markers, the
    generation-0 tolerance band (grey, when the lines share one generation-0 level) and dashed theory overlays: one
    panel per line up to LEGEND_LINES lines (the others' medians faint behind it), beyond that one panel per value of
    the outermost other knob without bands."""
    names = [f"{knob_label(line['labels'])} (n={line['points'][0][4]})" for line in lines]
    one_per_line = panels.one_panel_per_line(len(lines))
    if one_per_line:
        field, groups = None, [(names[index], [index]) for index in range(len(lines))]
    else:
        field, groups = panels.split([line["labels"] for line in lines])
        names = [f"{knob_label(panels.rest(line['labels'], field))} (n={line['points'][0][4]})" for line in lines]
    figure, axes = panels.subplots(len(groups))
    colours, handles = panels.colours(names), {}
    baselines = np.concatenate([line["baselines"] for line in lines])
    level = np.median(baselines) if baselines.size else np.nan
    shared = np.isfinite(level) and level != 0 and np.all(np.abs(baselines - level) <= 0.1 * abs(level))
    columns = [[np.asarray(column) for column in zip(*line["points"])] for line in lines]
    lines_module = panels.matplotlib_module().lines
    for axis, (value, members) in zip(axes, groups):
        if one_per_line:
            panels.draw_other_medians(axis, [c[0] for c in columns], [c[1] for c in columns], members[0])
        for index in members:
            verdict, colour = verdicts[index], colours[names[index]]
            value_, median, q10, q90, _ = columns[index]
            (drawn,) = axis.plot(value_, median, marker="o", markersize=3, color=colour, zorder=3)
            if len(members) <= panels.LEGEND_LINES and (one_per_line or len(lines) == 1):
                axis.fill_between(value_, q10, q90, color=colour, alpha=0.25, linewidth=0, zorder=2)
            if verdict["boundary"] is not None:
                axis.axvline(verdict["boundary"], color=colour, linestyle=":", linewidth=1.2)
                marker = lines_module.Line2D([], [], color="black" if one_per_line else colour, linestyle=":")
                handles.setdefault("breakdown (dotted)" if one_per_line else f"breakdown of {names[index]}", marker)
            if not one_per_line:
                handles.setdefault(names[index], drawn)
        if shared:
            low, high = sorted((level - tolerance * abs(level), level + tolerance * abs(level)))
            band = axis.axhspan(low, high, color="grey", alpha=0.12, zorder=0)
            handles.setdefault(f"generation 0 median +-{tolerance:g} (relative)", band)
        dashes = iter(["--", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1))] * len(reference_lines))
        for reference_knob, reference, text in reference_lines:
            if reference_knob == knob:  # one dash style per theory line, so the legend tells them apart
                drawn = axis.axvline(reference, color="black", linestyle=next(dashes), linewidth=1)
                handles.setdefault(text, drawn)
        if one_per_line:
            axis.set_title(panels.panel_title(value), fontsize=8)
        elif field is not None:
            axis.set_title(knob_label({field: value}), fontsize=8)
    if one_per_line:
        panels.line_panel_legend(handles, "black", True, True)
    elif len(lines) == 1:
        handles.setdefault("10-90% band over seeds", panels.matplotlib_module().patches.Patch(alpha=0.25))
    rows = [{"q10": [p[2] for p in line["points"]], "q90": [p[3] for p in line["points"]]} for line in lines]
    if rows and _spans_decades(rows):
        panels.log_y(axes[0])
    title = f"{metric} at the final generation vs {knob}: median over seeds, 10-90% band"
    if not one_per_line and max(len(members) for _, members in groups) > panels.LEGEND_LINES:
        title = f"{metric} at the final generation vs {knob}: medians of {len(lines)} lines (labels: report.md table)"
    title += f"\n{settings}" if settings else ""
    panels.finish(figure, axes, handles, path, title, knob, f"{metric} at generation {final}")


def strength_sections(results: Results, output: str, make_plots: bool = True, figures: list | None = None) -> list[str]:
    """report.md sections: per primary metric (config.report.metrics) and numeric swept knob, final metric vs the knob
    (figure under output/plots; queued on `figures` when given, see panels.later) and a table of each line's breakdown
    strength (collapse_jax.analysis.breakdown)."""
    settings = breakdown.settings(results.config, list(results.metrics))
    knobs = breakdown.numeric_swept_knobs(results)
    if settings.knobs is not None:
        knobs = [k for k in settings.knobs if k in knobs]
    final = int(results.generations[-1])  # the last column's generation
    lines_out, left_out = [], []
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
            undefined = [verdict["status"] == "no_baseline" for verdict in verdicts]
            if all(undefined):
                left_out.append(f"{metric} vs {knob}")
                continue
            lines_out += [f"### {metric} vs {knob}", ""]
            if make_plots:
                name = f"{metric}_final_vs_{knob}.png"
                panels.later(
                    figures,
                    plot_final_vs_knob,
                    lines,
                    verdicts,
                    metric,
                    knob,
                    final,
                    os.path.join(output, "plots", name),
                    tolerance,
                    settings.reference_lines,
                    panels.fixed_settings(results.config),
                )
                lines_out += [f"![{metric} at generation {final} vs {knob}](plots/{name})", ""]
            kept = [(line, verdict) for line, verdict, skip in zip(lines, verdicts, undefined) if not skip]
            lines_out += ["| line | breakdown | all crossings |", "|---|---|---|"]
            for line, verdict in kept:
                crossings = ", ".join(f"{c:.4g}" for c in verdict["crossings"]) or "-"
                lines_out.append(f"| {knob_label(line['labels'])} | {_boundary_text(knob, verdict)} | {crossings} |")
            lines_out += [
                "",
                f"| line | {knob} | chains | gen0 median | final median [10%, 90%] | within the band |",
                "|---|---|---|---|---|---|",
            ]
            for line, verdict in kept:
                for point, baseline, within in zip(line["points"], line["baselines"], verdict["within"]):
                    value, median, q10, q90, chains = point
                    lines_out.append(
                        f"| {knob_label(line['labels'])} | {value:g} | {chains} | {baseline:.3g} | "
                        f"{median + 0.0:.3g} [{q10 + 0.0:.3g}, {q90 + 0.0:.3g}] | {'yes' if within else 'no'} |"
                    )  # + 0.0: no "-0"
            if any(undefined):
                lines_out += ["", f"Left out: {sum(undefined)} lines whose {UNDEFINED}."]
            lines_out.append("")
    if left_out:
        lines_out += [f"Left out of the breakdown: {', '.join(left_out)} (every line's {UNDEFINED}).", ""]
    return lines_out
