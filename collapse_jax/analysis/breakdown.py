"""Final-generation metric vs a swept knob (a mitigation's strength) and where each line leaves the no-collapse band.

Pure functions over Results: per line median and 10-90% band over seeds, and the interpolated breakdown boundary.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from typing import Any

import numpy as np

from collapse_jax.analysis.results import SUMMARY_QUANTILES, Results
from collapse_jax.models import contract

DIRECTIONS = ("auto", "higher_is_safer", "lower_is_safer")
DEFAULT_TOLERANCE = 0.5
# Curation bookkeeping (kept share, measured detector rates, bad shares): not collapse metrics; drawn only if named.
BOOKKEEPING_METRICS = (
    contract.KEPT_FRACTION,
    contract.SYNTHETIC_SHARE,
    *contract.DETECTION_METRICS,
    *contract.VERIFIER_METRICS,
    *contract.PREFERENCE_METRICS,
)


@dataclasses.dataclass(frozen=True)
class ReportSettings:
    """config.report: which metrics get strength figures, the breakdown band, theory overlays, known directions."""

    metrics: tuple[str, ...]
    collapse_tolerance: float  # the band of every metric not named in metric_tolerances
    reference_lines: tuple[tuple[str, float, str], ...]  # (knob, value, label): dashed vertical lines
    directions: dict[str, str]  # knob -> one of DIRECTIONS (unnamed knobs: auto)
    knobs: tuple[str, ...] | None  # knobs that get a figure (None: every numeric swept knob)
    metric_tolerances: dict[str, float] = dataclasses.field(default_factory=dict)  # per-metric bands

    def tolerance(self, metric: str) -> float:
        return self.metric_tolerances.get(metric, self.collapse_tolerance)


def _positive_tolerance(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{field}: must be a number > 0 (a relative band), got {value!r}")
    return float(value)


def settings(config: dict, metric_names: list[str] | None) -> ReportSettings:
    """Read and validate config['report'] (absent: every non-bookkeeping metric, tolerance 0.5, no overlays).

    metric_names None (before a run, when they are not known yet) checks everything but the metric names.
    """
    block = dict(config.get("report") or {})
    unknown = sorted(set(block) - {"metrics", "collapse_tolerance", "reference_lines", "directions", "knobs"})
    if unknown:
        raise ValueError(
            f"config.report.{unknown[0]}: unknown field (allowed: metrics, collapse_tolerance, "
            "reference_lines, directions, knobs)"
        )
    named = block.get("metrics")
    if named is None:
        metrics = tuple(m for m in metric_names or () if m != "failed" and m not in BOOKKEEPING_METRICS)
    else:
        metrics = (named,) if isinstance(named, str) else tuple(named)
        missing = [m for m in metrics if metric_names is not None and m not in metric_names]
        if missing:
            raise ValueError(
                f"config.report.metrics: {missing[0]!r} is not a metric of this run (have: {metric_names})"
            )
    # One relative band for every metric, or {metric: band} (metrics not named keep DEFAULT_TOLERANCE): a metric that
    # moves little (a VAE's latent spread) and one that moves a lot (a Frechet distance) need different bands.
    raw = block.get("collapse_tolerance", DEFAULT_TOLERANCE)
    per_metric = {}
    if hasattr(raw, "items"):
        tolerance = DEFAULT_TOLERANCE
        for metric, value in raw.items():
            if metric_names is not None and metric not in metric_names:
                raise ValueError(
                    f"config.report.collapse_tolerance.{metric}: not a metric of this run (have: {metric_names})"
                )
            per_metric[metric] = _positive_tolerance(f"config.report.collapse_tolerance.{metric}", value)
    else:
        tolerance = _positive_tolerance("config.report.collapse_tolerance", raw)
    lines = []
    for entry in block.get("reference_lines") or ():
        if not (
            isinstance(entry, (tuple, list))
            and len(entry) == 3
            and isinstance(entry[0], str)
            and isinstance(entry[1], numbers.Real)
        ):
            raise ValueError(f"config.report.reference_lines: each entry must be (knob, value, label), got {entry!r}")
        lines.append((entry[0], float(entry[1]), str(entry[2])))
    directions = dict(block.get("directions") or {})
    for knob, direction in directions.items():
        if direction not in DIRECTIONS:
            raise ValueError(f"config.report.directions.{knob}: {direction!r} is not one of {DIRECTIONS}")
    knobs = block.get("knobs")
    knobs = ((knobs,) if isinstance(knobs, str) else tuple(knobs)) if knobs is not None else None
    return ReportSettings(metrics, float(tolerance), tuple(lines), directions, knobs, per_metric)


def numeric_swept_knobs(results: Results) -> list[str]:
    """Knobs (dynamic or static) with more than one finite numeric value across chains: candidate strength axes."""
    swept = []
    for name in results.group_fields:
        values = results.knobs[name]
        if values.dtype.kind not in "biuf":
            continue
        finite = np.unique(values[np.isfinite(values.astype(np.float64))])
        if finite.size > 1:
            swept.append(name)
    return swept


def final_vs_knob(results: Results, metric: str, knob: str) -> list[dict[str, Any]]:
    """One line per combination of the other swept knobs and static labels: knob value -> final-generation summary.

    Each line: {"labels": other fields, "points": [(value, median, q10, q90, chains)], "baselines": generation-0
    median of each point's chains, "spreads": their generation-0 10-90% spread}; quantiles over seeds (failed chains
    excluded), points sorted by value.
    """
    final = results.metrics[metric].shape[1] - 1
    lines: dict[tuple, dict] = {}
    for labels, indices in results.knob_groups():
        labels = dict(labels)
        value = labels.pop(knob)
        values = results.metrics[metric][indices][~results.failed[indices]].astype(np.float64)
        if value is None or not np.isfinite(value) or len(values) == 0:
            continue  # a knob this group lacks (None: e.g. the end of a schedule under the constant schedule)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns of unfinished runs
            q10, median, q90 = np.nanquantile(values[:, final], SUMMARY_QUANTILES)
            low, baseline, high = np.nanquantile(values[:, 0], SUMMARY_QUANTILES)
        if not np.isfinite(median):
            continue
        line = lines.setdefault(tuple(labels.items()), {"labels": labels, "points": [], "baselines": [], "spreads": []})
        line["points"].append((value, float(median), float(q10), float(q90), len(values)))
        line["baselines"].append(float(baseline))
        line["spreads"].append(float(high - low))
    for line in lines.values():
        order = np.argsort([p[0] for p in line["points"]], kind="stable")
        line["points"] = [line["points"][i] for i in order]
        for name in ("baselines", "spreads"):
            line[name] = [line[name][i] for i in order]
    return list(lines.values())


def _crossing(values, deviation, bound, a: int, b: int) -> float:
    """Where the straight line from sweep point a (inside the band) to b (outside) meets the band edge b lies past."""
    edge = bound if deviation[b] > bound else -bound
    return float(values[a] + (values[b] - values[a]) * (edge - deviation[a]) / (deviation[b] - deviation[a]))


def breakdown(
    values, finals, baselines, tolerance: float = DEFAULT_TOLERANCE, direction: str = "auto", spreads=None
) -> dict:
    """Where a line's final metric leaves the band |final - gen0| <= tolerance |gen0| (gen0: generation-0 median).

    With deviation d(s) = (final(s) - gen0(s)) / |gen0(s)| at each swept strength s (sorted ascending), a point is
    within when |d| <= tolerance. Between two neighbouring points on opposite sides, the crossing is where the straight
    line between their d values meets +-tolerance (linear interpolation between the bracketing sweep points).
    higher_is_safer: boundary = the smallest s from which every larger swept point is within (the crossing below the
    top run of within points); lower_is_safer mirrors it; auto picks the side whose end point is within, when exactly
    one end is. Returns {"boundary": float | None, "direction", "status": crossing | always_within | never_within |
    collapses_at_safe_end | non_monotone | no_baseline (gen0 not resolved from 0: |gen0| <= half its 10-90% spread
    over seeds, given as `spreads`), "crossings": every interpolated crossing, "within": [bool]}.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"config.report.directions: {direction!r} is not one of {DIRECTIONS}")
    values, finals, baselines = (np.asarray(x, np.float64) for x in (values, finals, baselines))
    result = {"boundary": None, "direction": direction, "crossings": [], "within": []}
    # A relative band needs a generation-0 level resolved from zero: finite and larger than half the seeds' 10-90%
    # spread at generation 0 (non-zero when no spread is given): errors to the truth and log-ratios start at 0 +- noise.
    spreads = np.zeros_like(baselines) if spreads is None else np.asarray(spreads, np.float64)
    if values.size == 0 or not np.all(np.isfinite(baselines)) or np.any(np.abs(baselines) <= spreads / 2):
        return {**result, "status": "no_baseline"}
    deviation = (finals - baselines) / np.abs(baselines)
    within = np.abs(deviation) <= tolerance
    result["within"] = within.tolist()
    result["crossings"] = [
        _crossing(values, deviation, tolerance, *((i, i + 1) if within[i] else (i + 1, i)))
        for i in range(len(values) - 1)
        if within[i] != within[i + 1]
    ]
    if within.all():
        return {**result, "status": "always_within"}
    if not within.any():
        return {**result, "status": "never_within"}
    if direction == "auto":
        if within[-1] == within[0]:
            return {**result, "status": "non_monotone"}  # both ends agree: no side is the safe one
        direction = "higher_is_safer" if within[-1] else "lower_is_safer"
        result["direction"] = direction
    if direction == "higher_is_safer":
        if not within[-1]:
            return {**result, "status": "collapses_at_safe_end"}
        last_out = int(np.flatnonzero(~within)[-1])
        boundary = _crossing(values, deviation, tolerance, last_out + 1, last_out)
    else:
        if not within[0]:
            return {**result, "status": "collapses_at_safe_end"}
        first_out = int(np.flatnonzero(~within)[0])
        boundary = _crossing(values, deviation, tolerance, first_out - 1, first_out)
    return {**result, "boundary": boundary, "status": "crossing"}


def line_breakdown(line: dict, tolerance: float, direction: str = "auto") -> dict:
    """breakdown() of one final_vs_knob line."""
    values, medians = [p[0] for p in line["points"]], [p[1] for p in line["points"]]
    return breakdown(values, medians, line["baselines"], tolerance, direction, line.get("spreads"))
