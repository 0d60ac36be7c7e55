"""The results contract: metrics [chains, num_generations + 1] per name, knobs [chains], and per-group summaries.

Column 0 is generation 0 (the fit on real data); columns not yet computed are NaN, so partial runs load too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Any

import numpy as np

from collapse_jax import workdir_io

SUMMARY_QUANTILES = (0.1, 0.5, 0.9)


@dataclasses.dataclass
class Results:
    """All chains of a run, static groups concatenated in chain-id order."""

    metrics: dict[str, np.ndarray]  # name -> [chains, num_generations + 1]
    knobs: dict[str, np.ndarray]  # name -> [chains]: seed, real_fraction, model knobs, static labels (regime, ...)
    config: dict
    chain_ids: np.ndarray  # [chains] global ids in the config's sweep (shards of one sweep keep their ids)

    @property
    def num_chains(self) -> int:
        return len(self.knobs["seed"])

    @property
    def failed(self) -> np.ndarray:
        """[chains] bool: the chain went non-finite at some generation (its later columns are NaN)."""
        return np.nan_to_num(self.metrics["failed"], nan=0.0).max(axis=1) > 0

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
        rows = []
        for labels, indices in self.knob_groups():
            values = self.metrics[metric][indices][~self.failed[indices]]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns of unfinished runs
                quantiles = np.nanquantile(values, SUMMARY_QUANTILES, axis=0) if len(values) else None
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
        return rows


def _group_value(value: Any) -> Any:
    """A knob value as a group key: NaN (a knob this chain's static group lacks) becomes None, since NaN != NaN."""
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and value != value else value


def _assemble(config: dict, group_records: list[dict], group_metrics: list[dict[str, np.ndarray]]) -> Results:
    knob_names = list(dict.fromkeys(n for r in group_records for n in (*r["knobs"], *r["labels"])))
    metric_names = list(dict.fromkeys(n for m in group_metrics for n in m))
    generations = config["num_generations"] + 1
    knobs: dict[str, list] = {n: [] for n in knob_names}
    metrics: dict[str, list] = {n: [] for n in metric_names}
    chain_ids = []
    for record, values in zip(group_records, group_metrics):
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
        for name in metric_names:
            value = values.get(name, np.full((count, generations), np.nan, np.float32))
            metrics[name].append(np.pad(value, ((0, 0), (0, generations - value.shape[1])), constant_values=np.nan))
    return Results(
        {n: np.concatenate(v) for n, v in metrics.items()},
        {n: np.concatenate(v) for n, v in knobs.items()},
        config,
        np.concatenate(chain_ids),
    )


def from_groups(config, groups: list, group_metrics: list[dict[str, np.ndarray]]) -> Results:
    """Results of an in-memory run."""
    record = workdir_io.run_record(config, groups)
    return _assemble(record["config"], record["groups"], group_metrics)


def load(workdir: str) -> Results:
    """Load a finished or partially finished run from its workdir."""
    path = os.path.join(workdir, workdir_io.RUN_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--workdir: {workdir} holds no run ({workdir_io.RUN_FILE} is missing)")
    with open(path) as handle:
        record = json.load(handle)
    group_metrics = []
    for group in record["groups"]:
        metrics_file = workdir_io.metrics_path(workdir, group["index"])
        if os.path.exists(metrics_file):
            with np.load(metrics_file) as data:
                group_metrics.append({name: data[name] for name in data.files})
        else:
            group_metrics.append({})
    return _assemble(record["config"], record["groups"], group_metrics)
