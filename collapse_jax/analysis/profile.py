"""The collapse profile: per knob group and metric, where it starts and ends, when it leaves its starting band and how
fast it drifts, each with a bootstrap interval over chains (Results.profile; the table that opens report.md).

Pure numpy over Results.summary and the group's chains; pandas.DataFrame(results.profile()) gives it as a DataFrame.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from collapse_jax.models import contract
from collapse_jax.models.contract import PAIR_KNOBS

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
    "onset_low",
    "onset_high",
    "onset_resolved",
    "drift_rate",
    "drift_low",
    "drift_high",
    "drift_resolved",
    "floor_generation",
)
# Bootstrap over a group's chains (resampled with replacement, the same draw for every generation so a resample is a
# set of whole trajectories): a fixed seed makes the report reproducible bit for bit. 200 resamples put the 2.5% and
# 97.5% percentiles on the 5th and 195th order statistics; a large group gets fewer (at least 50) so that one metric's
# resampled medians stay near BOOTSTRAP_BUDGET values, and above SUBSAMPLE_CHAINS chains a resample is a subsample
# (bootstrap_medians) of at most SUBSAMPLE_CHAINS chains, fewer (down to MIN_SUBSAMPLE_CHAINS) when 50 resamples of
# 400 chains would pass the budget: the report's speed on a 10,000-chain run, flat in its generations (at 650
# generations 400-chain subsamples made the bootstrap 1.5 s of a 4.8 s report).
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_MIN_RESAMPLES = 50
BOOTSTRAP_BUDGET = 4_000_000
SUBSAMPLE_CHAINS = 400
MIN_SUBSAMPLE_CHAINS = 100
BOOTSTRAP_SEED = 0
# A 95% percentile interval: the percentile bootstrap of a median under-covers at a few dozen chains, so the wider
# interval keeps a 16-seed run from claiming a drift that a second set of seeds would not show.
INTERVAL = (0.025, 0.975)
# A median this close to 0 is rounding, not signal: a variance estimated from float32 points x = mu + sigma z carries
# an absolute error ~ eps^2 mu^2 (eps = 1.19e-7, eps^2 = 1.4e-14), so a ratio to an O(1) starting variance below
# ~70 eps^2 has stopped measuring the decay (a collapsed trace ratio sits at ~1e-13), and a slope of its log is the
# slope of the rounding. Such a median gets a flag, not a drift rate.
FLOAT32_FLOOR = 1e-12


def group_label(labels: dict) -> str:
    """Human-readable name of a knob group for legends and tables, e.g. 'real_fraction=0.1, regime=replace'."""
    # A knob the group lacks (None: e.g. a schedule's end under the constant schedule) is left out of its name.
    shown = {k: v for k, v in labels.items() if v is not None}
    for field, (low, high) in PAIR_KNOBS.items():  # stored as two knobs; named as the config's one field, in place
        if low in shown and high in shown:
            pair = f"({shown[low]:g}, {shown[high]:g})"
            shown = {(field if k == low else k): (pair if k == low else v) for k, v in shown.items() if k != high}
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
    rate = drift_rates(generations, median[None, :], final_generation)[0]
    return None if np.isnan(rate) else float(rate)


def drift_rates(generations: np.ndarray, medians: np.ndarray, final_generation: int) -> np.ndarray:
    """drift_rate of each row of medians [resamples, generations] in one pass (NaN where it is None)."""
    window = (generations >= final_generation / 2) & (generations <= final_generation)
    values = medians[:, window].astype(np.float64)
    finite = np.isfinite(values)
    one_sign = np.where(finite, values > 0, True).all(axis=1) | np.where(finite, values < 0, True).all(axis=1)
    usable = one_sign & (finite.sum(axis=1) >= 2)
    x = np.where(finite, generations[window].astype(np.float64), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(finite, np.log(np.abs(values)), np.nan)
        dx = x - np.nanmean(x, axis=1, keepdims=True)
        slope = np.nansum(dx * (y - np.nanmean(y, axis=1, keepdims=True)), axis=1) / np.nansum(dx * dx, axis=1)
    return np.where(usable, slope, np.nan)


def floor_generation(generations: np.ndarray, median: np.ndarray) -> int | None:
    """First recorded generation whose median is within FLOAT32_FLOOR of 0 (but not exactly 0), or None."""
    at_floor = np.flatnonzero(np.isfinite(median) & (np.abs(median) <= FLOAT32_FLOOR) & (median != 0))
    return int(generations[at_floor[0]]) if len(at_floor) else None


def _medians_and_spread(columns: np.ndarray, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Medians [resamples, generations] of the chains draws [resamples, k] picks from columns [generations, chains],
    and each resample's generation-0 10%/90% spread [resamples]."""
    drawn = columns[:, draws]  # [generations, resamples, k]: each resample's chains contiguous
    if np.isnan(drawn).any():  # nanmedian and nanquantile loop in Python over the columns: only when needed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns of unfinished runs
            low, high = np.nanquantile(drawn[0], [0.1, 0.9], axis=1)
            return np.nanmedian(drawn, axis=2).T, high - low
    # Sorting contiguous rows (numpy's SIMD sort) is ~4x faster than the partition np.median runs; same values.
    drawn.sort(axis=2)
    k = drawn.shape[2]
    medians = 0.5 * (drawn[:, :, (k - 1) // 2].astype(np.float64) + drawn[:, :, k // 2])
    low, high = np.quantile(drawn[0], [0.1, 0.9], axis=1)
    return medians.T, high - low


def bootstrap_medians(
    values: np.ndarray, rng: np.random.Generator, full: tuple[np.ndarray, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Resampled chains' medians [resamples, generations] and their generation-0 10%/90% spread [resamples]. `full`:
    the whole sample's medians [generations] and generation-0 spread when the caller has them (the report's summary
    sorted every column already), else computed here.

    Up to SUBSAMPLE_CHAINS chains: the bootstrap (chains drawn with replacement). Above: subsampling (Politis & Romano):
    m chains drawn without replacement (SUBSAMPLE_CHAINS; fewer for long runs, see BOOTSTRAP_BUDGET), each statistic's
    deviation from the full sample's scaled by sqrt(m / (n - m)), the ratio of the n-chain median's standard
    deviation to that of an m-of-n subsample's (the finite-population correction included), so the resamples spread
    as n-chain medians would at m chains' cost.
    """
    chains, generations = values.shape
    columns = np.ascontiguousarray(values.T)
    affordable = BOOTSTRAP_BUDGET // max(BOOTSTRAP_MIN_RESAMPLES * generations, 1)
    drawn_chains = min(chains, SUBSAMPLE_CHAINS)
    if chains > SUBSAMPLE_CHAINS:
        drawn_chains = int(np.clip(affordable, MIN_SUBSAMPLE_CHAINS, SUBSAMPLE_CHAINS))
    budget = BOOTSTRAP_BUDGET // max(drawn_chains * generations, 1)
    resamples = int(np.clip(budget, BOOTSTRAP_MIN_RESAMPLES, BOOTSTRAP_RESAMPLES))
    if drawn_chains == chains:
        return _medians_and_spread(columns, rng.integers(0, chains, size=(resamples, chains)))
    subsets = np.argsort(rng.random((resamples, chains)), axis=1)[:, :drawn_chains]  # without replacement
    medians, spread = _medians_and_spread(columns, subsets)
    if full is None:
        full_medians, full_spread = _medians_and_spread(columns, np.arange(chains)[None])
    else:
        full_medians, full_spread = np.asarray(full[0], np.float64)[None], np.float64(full[1])
    scale = np.sqrt(drawn_chains / (chains - drawn_chains))
    return full_medians + scale * (medians - full_medians), full_spread + scale * (spread - full_spread)


def bootstrap(
    generations: np.ndarray,
    values: np.ndarray,
    t: float,
    final_generation: int | None,
    rng: np.random.Generator,
    full: tuple[np.ndarray, float] | None = None,
) -> dict[str, Any]:
    """95% bootstrap intervals of onset and drift rate over the group's chains, and whether each is resolved.

    Each resample gets its own band (from its own generation-0 median and spread) and onset; a resample that never
    leaves its band counts as an onset past the run. Onset is resolved when at least 97.5% of resamples leave the band
    and the interval is no wider than the onset itself; a drift rate when its interval excludes 0 (is narrower than
    the effect) and at least 95% of resamples have one.
    """
    out = dict(onset_low=None, onset_high=None, onset_resolved=False, drift_low=None, drift_high=None)
    out["drift_resolved"] = False
    if len(values) < 2 or final_generation is None:
        return out
    medians, spread0 = bootstrap_medians(values, rng, full)
    relative = np.abs(medians[:, 0]) > spread0 / 2
    half_width = np.where(relative, t * np.abs(medians[:, 0]), t * spread0)
    left = np.isfinite(medians) & (np.abs(medians - medians[:, :1]) > half_width[:, None])
    onsets = np.where(left.any(axis=1), generations[left.argmax(axis=1)].astype(np.float64), np.inf)
    low, high = np.quantile(onsets, INTERVAL, method="inverted_cdf")
    out.update(onset_low=None if np.isinf(low) else int(low), onset_high=None if np.isinf(high) else int(high))
    out["onset_resolved"] = bool(np.isfinite(high))  # profile() adds: no wider than the onset
    rates = drift_rates(generations, medians, final_generation)
    defined = rates[np.isfinite(rates)]
    if len(defined) >= 0.95 * len(rates):
        low, high = np.quantile(defined, INTERVAL)
        out.update(drift_low=float(low), drift_high=float(high), drift_resolved=bool(low > 0 or high < 0))
    return out


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
    rng = np.random.default_rng(BOOTSTRAP_SEED)
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
            kept = indices[~results.failed[indices]]
            # The summary's medians and generation-0 spread are the whole sample's (no NaN: every column finite).
            full = (median, high[0] - low[0]) if np.isfinite(median).all() and np.isfinite(high[0] - low[0]) else None
            row.update(bootstrap(generations, results.metrics[metric][kept], t, final_generation, rng, full))
            row["floor_generation"] = floor_generation(generations, median)
            point = row["onset"]
            row["onset_resolved"] = (
                row["onset_resolved"] and point is not None and (row["onset_high"] - row["onset_low"] <= point)
            )
            if row["floor_generation"] is not None:  # the slope of rounding error: flagged, not a rate
                row.update(drift_rate=None, drift_low=None, drift_high=None, drift_resolved=False)
            rows.append(row)
    return rows


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value + 0.0:.{digits}g}"  # + 0.0: no "-0"


def _onset_cell(row: dict) -> str:
    """Onset with its 95% interval, or why there is none to take at face value."""
    low, high = row["onset_low"], row["onset_high"]
    interval = f"[{'-' if low is None else low}, {'never' if high is None else high}]"
    if row["onset"] is None:
        return f"none {interval}" if low is not None else "none"
    return f"{row['onset']} {interval}" + ("" if row["onset_resolved"] else " not resolved")


def _drift_cell(row: dict) -> str:
    """Drift rate with its 95% interval; a median at the float32 floor is flagged instead."""
    if row["floor_generation"] is not None:
        return f"at float32 floor from gen {row['floor_generation']}"
    if row["drift_rate"] is None:
        return "-"
    if row["drift_low"] is None:
        return f"{_number(row['drift_rate'])} not resolved (over 5% of resamples change sign)"
    interval = f"[{_number(row['drift_low'])}, {_number(row['drift_high'])}]"
    return f"{_number(row['drift_rate'])} {interval}" + ("" if row["drift_resolved"] else " not resolved")


def markdown(results: Results, rows: list[dict] | None = None) -> list[str]:
    """report.md's "Collapse profile" section: the profile table and how to read it."""
    rows = profile(results) if rows is None else rows
    tolerances = sorted({tolerance(results.config, r["metric"]) for r in rows})
    lines = [
        "## Collapse profile",
        "",
        "| group | metric | chains (failed) | gen 0 median [10%, 90%] | final median [10%, 90%] @gen | band | onset "
        "[95% CI] | drift rate /gen [95% CI] |",
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
            f"{_number(row['generation0_high'])}] | {final} | {shown_band} | {_onset_cell(row)} | {_drift_cell(row)} |"
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
        f"there). [95% CI]: 2.5-97.5% percentiles over up to {BOOTSTRAP_RESAMPLES} bootstrap resamples of the group's "
        f"chains (seed {BOOTSTRAP_SEED}; 'never': over 2.5% of resamples stay in the band). 'not resolved': the "
        f"interval is wider than the effect (an onset interval wider than the onset or reaching past the run, a "
        f"drift interval that contains 0): more seeds would be needed to claim it. 'at float32 floor': the median "
        f"is within {FLOAT32_FLOOR:g} of 0, where float32 rounding, not the model, sets the value, so no drift is "
        f"given. Results.profile() returns this table.",
        "",
    ]
    return lines
