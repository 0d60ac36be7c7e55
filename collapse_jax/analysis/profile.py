"""The collapse profile: per knob group and metric, where it starts, where it ends, when it leaves its starting band
and how fast it drifts, so every report opens with what "collapse" means for this run (Results.profile, report.md).

Pure numpy over Results.summary (no pandas); pandas.DataFrame(results.profile()) gives the table as a DataFrame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collapse_jax.models import contract

# analysis.results.Results, not imported: results.py imports this module for Results.profile (a cycle otherwise).
Results = Any

# The band's width t (config.report.collapse_tolerance, a number or {metric: number}; validated by
# analysis.breakdown.settings before every run and report): the same t judges the breakdown strength.
DEFAULT_TOLERANCE = 0.5
# Curation bookkeeping (kept share, measured detector rates, bad shares): not collapse metrics, NaN at generation 0.
BOOKKEEPING_METRICS = (
    contract.KEPT_FRACTION,
    contract.SYNTHETIC_SHARE,
    *contract.DETECTION_METRICS,
    *contract.VERIFIER_METRICS,
    *contract.PREFERENCE_METRICS,
)
COLUMNS = (
    "group",
    "metric",
    "chains",
    "failed",
    "generation0",
    "generation0_low",
    "generation0_high",
    "final_generation",
    "final",
    "final_low",
    "final_high",
    "band",
    "band_half_width",
    "onset",
    "drift_rate",
)


def group_label(labels: dict) -> str:
    """Human-readable name of a knob group for legends and tables, e.g. 'real_fraction=0.1, regime=replace'."""
    # A knob the group lacks (None: e.g. a schedule's end under the constant schedule) is left out of its name.
    shown = {k: v for k, v in labels.items() if v is not None}
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()) or "all chains"


def tolerance(config: dict, metric: str) -> float:
    """t of `metric` from config.report.collapse_tolerance (a number for every metric, or {metric: number})."""
    raw = (config.get("report") or {}).get("collapse_tolerance", DEFAULT_TOLERANCE)
    if hasattr(raw, "items"):
        return float(raw.get(metric, DEFAULT_TOLERANCE))
    return float(raw)


def collapse_metrics(results: Results) -> list[str]:
    """The metrics a profile covers by default: all but `failed` and the curation bookkeeping."""
    return [m for m in results.metrics if m != "failed" and m not in BOOKKEEPING_METRICS]


def band(generation0: float, low: float, high: float, t: float) -> tuple[str, float]:
    """("relative", t |gen0|) when the generation-0 median is resolved from zero (|gen0| > half its 10-90% spread over
    seeds, breakdown.py's criterion), else ("absolute", t (q90 - q10)): errors to the truth and log-ratios start at
    0 +- noise, where a relative band is meaningless; at t = 0.5 the absolute band is the generation-0 10-90% width.
    ("none", nan) when generation 0 has no finite median."""
    if not np.isfinite(generation0):
        return "none", float("nan")
    spread = float(high - low)
    if abs(generation0) > spread / 2:
        return "relative", t * abs(float(generation0))
    return "absolute", t * spread


def onset(generations: np.ndarray, median: np.ndarray, generation0: float, half_width: float) -> int | None:
    """First recorded generation whose median is farther than half_width from the generation-0 median (None: never).

    With config.record_every = k the true onset lies after the previous recorded generation, at or before this one.
    """
    if not np.isfinite(half_width):
        return None
    out = np.flatnonzero(np.isfinite(median) & (np.abs(median - generation0) > half_width))
    return int(generations[out[0]]) if len(out) else None


def drift_rate(generations: np.ndarray, median: np.ndarray, final_generation: int) -> float | None:
    """Least-squares slope of log|median| vs generation over the second half (final_generation / 2 .. final), per
    generation: median ~ exp(rate g). None where the median is zero, changes sign or has under 2 finite points there."""
    window = np.isfinite(median) & (generations >= final_generation / 2) & (generations <= final_generation)
    values = median[window].astype(np.float64)
    if len(values) < 2 or not (np.all(values > 0) or np.all(values < 0)):
        return None
    return float(np.polyfit(generations[window].astype(np.float64), np.log(np.abs(values)), 1)[0])


def profile(
    results: Results, metrics: list[str] | None = None, summaries: dict[str, list[dict]] | None = None
) -> list[dict[str, Any]]:
    """One record per knob group and metric (groups in chain order): see Results.profile; `summaries` holds
    results.summary of metrics the caller computed already (the report shares them with its figures)."""
    metrics = collapse_metrics(results) if metrics is None else ([metrics] if isinstance(metrics, str) else metrics)
    unknown = [m for m in metrics if m not in results.metrics]
    if unknown:
        raise ValueError(f"metrics: {unknown[0]!r} is not a metric of this run (it has {', '.join(results.metrics)})")
    generations = np.asarray(results.generations, np.int64)
    groups = results.knob_groups()
    rows = []
    for metric in metrics:
        t = tolerance(results.config, metric)
        summary_rows = summaries[metric] if summaries and metric in summaries else results.summary(metric)
        for (labels, indices), summary in zip(groups, summary_rows):
            row: dict[str, Any] = {**labels, "group": group_label(labels), "metric": metric}
            row.update(chains=summary["chains"], failed=len(indices) - summary["chains"])
            nan = np.full(len(generations), np.nan)
            median, low, high = (nan if summary[k] is None else summary[k] for k in ("median", "q10", "q90"))
            finite = np.flatnonzero(np.isfinite(median))
            last = finite[-1] if len(finite) else 0
            kind, half_width = band(median[0], low[0], high[0], t)
            final_generation = int(generations[last]) if len(finite) else None
            row.update(
                generation0=float(median[0]),
                generation0_low=float(low[0]),
                generation0_high=float(high[0]),
                final_generation=final_generation,
                final=float(median[last]) if len(finite) else float("nan"),
                final_low=float(low[last]) if len(finite) else float("nan"),
                final_high=float(high[last]) if len(finite) else float("nan"),
                band=kind,
                band_half_width=half_width,
                onset=onset(generations, median, float(median[0]), half_width),
                drift_rate=None if final_generation is None else drift_rate(generations, median, final_generation),
            )
            rows.append(row)
    return rows


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value + 0.0:.{digits}g}"  # + 0.0: no "-0"


def markdown(results: Results, rows: list[dict] | None = None) -> list[str]:
    """report.md's "Collapse profile" section: the profile table and how to read it."""
    rows = profile(results) if rows is None else rows
    tolerances = sorted({tolerance(results.config, r["metric"]) for r in rows})
    lines = [
        "## Collapse profile",
        "",
        "| group | metric | chains (failed) | gen 0 median [10%, 90%] | final median [10%, 90%] @gen | band | onset "
        "| drift rate /gen |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        kind = row["band"]
        shown_band = "-" if kind == "none" else f"+-{_number(row['band_half_width'])} ({kind})"
        final = (
            f"{_number(row['final'], 4)} [{_number(row['final_low'])}, {_number(row['final_high'])}] "
            f"@{row['final_generation']}"
            if row["final_generation"] is not None
            else "-"
        )
        lines.append(
            f"| {row['group']} | {row['metric']} | {row['chains']} ({row['failed']}) | "
            f"{_number(row['generation0'], 4)} [{_number(row['generation0_low'])}, "
            f"{_number(row['generation0_high'])}] | {final} | {shown_band} | "
            f"{'none' if row['onset'] is None else row['onset']} | {_number(row['drift_rate'])} |"
        )
    every = "" if results.every_generation else " (recorded every few generations: onset is the first recorded one)"
    lines += [
        "",
        f"Medians and 10-90% bands over seeds; failed (non-finite) chains are left out of every column and counted in "
        f"parentheses. Band: the generation-0 median +- t |gen0| (relative), or +- t (q90 - q10) of generation 0 "
        f"(absolute) where the generation-0 median is not resolved from 0 (|gen0| <= half its 10-90% spread); "
        f"t = {', '.join(f'{v:g}' for v in tolerances) or DEFAULT_TOLERANCE} (config.report.collapse_tolerance). "
        f"Onset: first generation whose median leaves the band{every}. Drift rate: slope of log|median| per "
        f"generation over the second half of the run (median ~ exp(rate g); '-' where the median is 0 or changes sign "
        f"there). Results.profile() returns this table.",
        "",
    ]
    return lines
