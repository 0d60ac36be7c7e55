"""The results contract: metrics [chains, recorded generations] per name, knobs [chains], and per-group summaries.

Column j is generation `generations[j]` (all of 0..num_generations unless config.record_every > 1; column 0 is the fit
on real data); columns not yet computed are NaN, so partial runs load too. Event generations are exact per chain.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Any

import numpy as np

from collapse_jax.analysis import frames, profile
from collapse_jax.store import metric_log, workdir_io

SUMMARY_QUANTILES = (0.1, 0.5, 0.9)
# Event metrics of workdirs written before metric files had event times (the discrete family's fixation); newer
# runs take them from the family's `event_metrics`, and `failed` always is one.
DEFAULT_EVENT_METRICS = ("absorbed",)


@dataclasses.dataclass
class Results:
    """All chains of a run, static groups concatenated in chain-id order."""

    metrics: dict[str, np.ndarray]  # name -> [chains, len(generations)]
    knobs: dict[str, np.ndarray]  # name -> [chains]: seed, real_fraction, model knobs, static labels (regime, ...)
    config: dict
    chain_ids: np.ndarray  # [chains] global ids in the config's sweep (shards of one sweep keep their ids)
    generations: np.ndarray | None = None  # [columns] the generation of each metric column (None: 0, 1, 2, ...)
    # name -> [chains] first generation the 0/1 metric reached 1 (`failed`, `absorbed`); -1: never (so far)
    event_generation: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    # The family's ErrorSources as run.json records them ({column: ErrorSwitch fields}); None where the record lacks
    # them, and the report's error-sources section then reads the family's class (importing the family: jax).
    error_source_switches: dict[str, dict] | None = None

    def __post_init__(self):
        if self.generations is None:
            columns = next(iter(self.metrics.values())).shape[1] if self.metrics else 0
            self.generations = np.arange(columns)
        if "failed" not in self.event_generation and "failed" in self.metrics:
            self.event_generation = {**self.event_generation, **events_of(self.metrics, self.generations, ("failed",))}

    @property
    def every_generation(self) -> bool:
        """Whether column j is generation j (config.record_every = 1)."""
        return bool(np.array_equal(self.generations, np.arange(len(self.generations))))

    def require_every_generation(self, what: str) -> None:
        """One-line refusal for analysis that reads column j as generation j."""
        if not self.every_generation:
            raise ValueError(
                f"config.record_every: {what} needs every generation's metrics; this run kept "
                f"{len(self.generations)} of {int(self.generations[-1]) + 1} (rerun with record_every = 1)"
            )

    @property
    def num_chains(self) -> int:
        return len(self.knobs["seed"])

    @property
    def failed(self) -> np.ndarray:
        """[chains] bool: the chain went non-finite at some generation (its later columns are NaN)."""
        return self.event_generation["failed"] >= 0

    @property
    def group_fields(self) -> list[str]:
        """Knobs that vary across chains other than the seed: what a knob group is keyed by."""
        return [n for n, v in self.knobs.items() if n != "seed" and len(np.unique(v.astype(str))) > 1]

    def knob_groups(self) -> list[tuple[dict[str, Any], np.ndarray]]:
        """(knob values, chain indices) of each group of chains that differ only in seed."""
        fields = self.group_fields
        keys = [tuple(_group_value(self.knobs[f][i]) for f in fields) for i in range(self.num_chains)]
        groups: dict[tuple, list[int]] = {}
        for index, key in enumerate(keys):
            groups.setdefault(key, []).append(index)
        return [(dict(zip(fields, key)), np.asarray(indices)) for key, indices in groups.items()]

    def summary(self, metric: str) -> list[dict[str, Any]]:
        """Per knob group and generation: mean, median, 10%/90% quantiles over seeds (failed chains excluded).

        Medians and quantiles are the reliable summary once generations ~ M, where the chains turn heavy-tailed.
        """
        return self.summaries([metric])[metric]

    def summaries(self, metrics: list[str]) -> dict[str, list[dict[str, Any]]]:
        """summary() of each of `metrics`, grouping the chains once."""
        groups = [(labels, indices[~self.failed[indices]]) for labels, indices in self.knob_groups()]
        out = {}
        for metric in metrics:
            rows = []
            for labels, kept in groups:
                values = self.metrics[metric][kept]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns of unfinished runs
                    quantiles = quantiles_over_chains(values, SUMMARY_QUANTILES) if len(values) else None
                    mean = np.nanmean(values, axis=0) if len(values) else None
                rows.append(
                    {
                        "labels": labels,
                        "chains": len(values),
                        "mean": mean,
                        "q10": None if quantiles is None else quantiles[0],
                        "median": None if quantiles is None else quantiles[1],
                        "q90": None if quantiles is None else quantiles[2],
                    }
                )
            out[metric] = rows
        return out

    def profile(self, metrics: list[str] | None = None) -> list[dict[str, Any]]:
        """The collapse profile: one record per knob group and metric (default: all but `failed` and curation
        bookkeeping), the table that opens report.md; pandas.DataFrame(results.profile()) makes it a DataFrame.

        Keys: each group field (as in knob_groups), `group` (its label), `metric`, `chains` (finished without failing)
        and `failed` (non-finite at some generation: left out of every column, as in summary), `generation0` and
        `generation0_low`/`_high` (median and 10%/90% over seeds), `final_generation` (the last recorded generation
        with a finite median: a partial run's last computed one), `final`, `final_low`, `final_high` there, `band`
        ("relative": +- t |generation0|; "absolute": +- t (generation0_high - generation0_low) where |generation0| <=
        half that spread; t = config.report.collapse_tolerance) and `band_half_width`, `onset` (first recorded
        generation, a true generation number, whose median leaves the band; None: never) and `drift_rate` (slope of
        log|median| per generation over final_generation/2..final_generation; None where the median is 0 or changes
        sign there), with 95% bootstrap intervals over chains `onset_low`/`onset_high`, `drift_low`/`drift_high` and
        `onset_resolved`/`drift_resolved` (False: the interval is wider than the effect), and `floor_generation` (the
        first generation whose median sits at the float32 floor; None: never). Details: analysis/profile.py.
        """
        return profile.profile(self, metrics)

    def to_dataframe(
        self,
        metrics: list[str] | None = None,
        generations: frames.GenerationSelection = None,
        max_rows: float | None = None,
    ):
        """Tidy pandas table, one row per chain x recorded generation: chain_id, knobs and labels, generation (true
        number), failed, one column per metric. generations: None (all), g or [g, ...] (-1: the last), or a slice over
        generation numbers (slice(None, None, 10)); above max_rows (default frames.MAX_ROWS) rows it raises."""
        return frames.to_dataframe(self, metrics, generations, max_rows)

    def to_xarray(self, metrics: list[str] | None = None, generations: frames.GenerationSelection = None):
        """xarray Dataset, dims (chain, generation): a variable per metric and `failed`, knobs as chain coordinates."""
        return frames.to_xarray(self, metrics, generations)


def quantiles_over_chains(values: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """np.nanquantile(values, quantiles, axis=0), the same bits, in one vectorized pass over the columns without NaN.

    nanquantile runs a Python-level 1-D quantile per column (apply_along_axis). Here each column is sorted as a
    contiguous row of the transposed copy (numpy's SIMD sort: faster than the partition np.quantile runs, and it leaves
    every order statistic as it is), then read at numpy's linear-method indices with numpy's interpolation
    (`sorted_quantiles`). Columns with some NaN (rare: a metric undefined for some chains) take nanquantile; all-NaN
    columns are NaN.
    """
    rows = np.ascontiguousarray(values.T)  # [columns, chains], a copy: sorted in place
    missing = np.isnan(rows)
    clean = ~missing.any(axis=1)
    out = np.full((len(quantiles), values.shape[1]), np.nan, np.result_type(values.dtype, np.float64))
    if clean.all():
        rows.sort(axis=1)
        return sorted_quantiles(rows, quantiles)
    kept = rows[clean]
    kept.sort(axis=1)
    out[:, clean] = sorted_quantiles(kept, quantiles)
    mixed = ~clean & ~missing.all(axis=1)
    if mixed.any():
        out[:, mixed] = np.nanquantile(values[:, mixed], quantiles, axis=0)
    return out


def sorted_quantiles(rows: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """np.quantile(rows, quantiles, axis=1) (method "linear") of rows already sorted, without np.quantile's partition:
    virtual index (n - 1) q, its floor and the next index (both the last at or past the end), and numpy's lerp
    a + (b - a) t, or b - (b - a)(1 - t) where t >= 0.5, in the same dtypes, so the bits are np.quantile's."""
    count = rows.shape[1]
    virtual = (count - 1) * np.asarray(quantiles, np.float64)
    previous = np.floor(virtual)
    gamma = (virtual - previous)[:, None]
    low = previous.astype(np.intp)
    high = low + 1
    past_end = virtual >= count - 1
    low[past_end] = high[past_end] = count - 1
    a, b = rows[:, low].T, rows[:, high].T  # [quantiles, rows]
    difference = b - a
    out = np.add(a, difference * gamma)
    np.subtract(b, difference * (1 - gamma), out=out, where=gamma >= 0.5, casting="unsafe", dtype=out.dtype)
    return out


def _group_value(value: Any) -> Any:
    """A knob value as a group key: NaN (a knob this chain's static group lacks) becomes None, since NaN != NaN."""
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and value != value else value


def events_of(metrics: dict[str, np.ndarray], generations: np.ndarray, names) -> dict[str, np.ndarray]:
    """Event generations read off a history that holds every generation (runs from before event files)."""
    events = {}
    for name in names:
        if name in metrics:
            hit = np.nan_to_num(metrics[name], nan=0.0) >= 1.0
            events[name] = np.where(hit.any(axis=1), generations[np.argmax(hit, axis=1)], -1).astype(np.int32)
    return events


def _assemble(config: dict, group_records: list[dict], group_outputs: list[tuple]) -> Results:
    """One Results from each group's (generations, metric -> [chains, columns], events)."""
    knob_names = list(dict.fromkeys(n for r in group_records for n in (*r["knobs"], *r["labels"])))
    metric_names = list(dict.fromkeys(n for _, m, _ in group_outputs for n in m))
    event_names = list(dict.fromkeys(n for _, _, e in group_outputs for n in e))
    expected = metric_log.expected_generations(config["num_generations"], config.get("record_every", 1))
    columns = np.union1d(expected, np.concatenate([np.asarray(g, np.int64) for g, _, _ in group_outputs] + [expected]))
    knobs: dict[str, list] = {n: [] for n in knob_names}
    metrics: dict[str, list] = {n: [] for n in metric_names}
    events: dict[str, list] = {n: [] for n in event_names}
    chain_ids = []
    for record, (generations, values, group_events) in zip(group_records, group_outputs):
        count = len(record["chain_ids"])
        chain_ids.append(np.asarray(record["chain_ids"], np.int64))
        for name in knob_names:
            column = record["knobs"].get(name)
            if column is None:
                # A knob only some groups have (a schedule's end under the constant schedule): NaN, so the column
                # stays numeric; a static label missing from a group stays None.
                numeric = any(isinstance(r["knobs"].get(name), (list, np.ndarray)) for r in group_records)
                column = np.full(count, np.nan if numeric else record["labels"].get(name))
            knobs[name].append(np.asarray(column))
        full = np.array_equal(generations, columns)
        for name in metric_names:
            value = values.get(name)
            if value is None or not full:  # columns not yet computed (or a metric this group lacks) stay NaN
                padded = np.full((count, len(columns)), np.nan, np.float32)
                if value is not None:
                    padded[:, np.searchsorted(columns, generations)] = value
                value = padded
            metrics[name].append(value)
        for name in event_names:
            events[name].append(group_events.get(name, np.full(count, -1, np.int32)))

    def joined(parts: list[np.ndarray]) -> np.ndarray:
        return parts[0] if len(parts) == 1 else np.concatenate(parts)  # one group: keep the file mapping, no copy

    return Results(
        {n: joined(v) for n, v in metrics.items()},
        {n: joined(v) for n, v in knobs.items()},
        config,
        np.concatenate(chain_ids),
        columns,
        {n: joined(v) for n, v in events.items()},
    )


def from_groups(config, groups: list, group_outputs: list[tuple]) -> Results:
    """Results of an in-memory run from each group's (generations, metrics [chains, columns], events)."""
    record = workdir_io.run_record(config, groups)
    return _assemble(record["config"], record["groups"], group_outputs)


def _load_group(workdir: str, group: dict) -> tuple:
    """(generations, metric -> [chains, columns], events) of one group: metric files, or an older run's .npz."""
    if metric_log.read_header(workdir, group["index"]) is not None:
        generations, rows = metric_log.read(workdir, group["index"])
        return (
            generations,
            {name: value.T for name, value in rows.items()},
            metric_log.read_events(workdir, group["index"]),
        )
    old = workdir_io.metrics_path(workdir, group["index"])
    if not os.path.exists(old):
        return np.zeros(0, np.int64), {}, {}
    with np.load(old) as data:
        metrics = {name: data[name] for name in data.files}
    generations = np.arange(next(iter(metrics.values())).shape[1])
    return generations, metrics, events_of(metrics, generations, ("failed", *DEFAULT_EVENT_METRICS))


def load(workdir: str) -> Results:
    """Load a finished or partially finished run from its workdir (append-only metric files or an older .npz).

    A sweep ROOT or several runs: analysis.aggregate.load_workdirs merges them into one Results.
    """
    path = os.path.join(workdir, workdir_io.RUN_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--workdir: {workdir} holds no run ({workdir_io.RUN_FILE} is missing; a sweep ROOT or a folder of runs "
            f"loads with analysis.aggregate.load_workdirs)"
        )
    with open(path) as handle:
        record = json.load(handle)
    outputs = [_load_group(workdir, group) for group in record["groups"]]
    loaded = _assemble(record["config"], record["groups"], outputs)
    loaded.error_source_switches = record.get(workdir_io.ERROR_SOURCE_SWITCHES)
    return loaded
