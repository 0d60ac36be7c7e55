"""Results as tables researchers analyse: a tidy pandas DataFrame (one row per chain x recorded generation) and an
xarray Dataset (dims chain x generation); `long_columns`, their numpy core, also feeds experiments.report's table.

pandas and xarray are the optional `analysis` extra (pip install -e '.[analysis]'); numpy columns need neither.
"""

from __future__ import annotations

import importlib
import json
import numbers
from typing import Any

import numpy as np

# analysis.results.Results, not imported: results.py imports this module for its methods (an import cycle otherwise).
Results = Any

# Default row limit of to_dataframe: 10^7 rows of ~10 columns is ~1 GB in pandas; 10^6 chains x 1000 generations
# (10^9 rows) must be asked for explicitly. Set frames.MAX_ROWS to change the default for a session.
MAX_ROWS = 10**7
EXTRA = "pip install -e '.[analysis]'"

# A generation selection: None (every recorded one), a generation number (negative: from the end of the recorded
# ones, -1 = the last), a list/tuple/range/array of them, or a slice over generation numbers.
GenerationSelection = int | slice | list | tuple | range | np.ndarray | None


def require(module: str, what: str) -> Any:
    """Import `module` (pandas, xarray) or raise a one-line ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{what} needs {module}, part of the analysis extra: {EXTRA}") from None


def generation_columns(recorded: np.ndarray, generations: GenerationSelection = None) -> np.ndarray:
    """Column indices (sorted) of the selected generations among the `recorded` ones.

    None: all. An int or a list/tuple/range/array of ints: those generation numbers, each one recorded (a negative
    one indexes the recorded generations from the end: -1 is the last). A slice: start <= g < stop, g = start
    (mod step), over generation numbers, keeping those recorded (slice(None, None, 10): generations 0, 10, 20, ...).
    """
    recorded = np.asarray(recorded, np.int64)
    if generations is None:
        return np.arange(len(recorded))
    if isinstance(generations, slice):
        start, stop, step = generations.start, generations.stop, generations.step
        if any(v is not None and (not isinstance(v, numbers.Integral) or v < 0) for v in (start, stop)) or (
            step is not None and (not isinstance(step, numbers.Integral) or step < 1)
        ):
            raise ValueError(f"generations: a slice takes generation numbers >= 0 and a step >= 1, got {generations}")
        start, step = start or 0, step or 1
        keep = (recorded >= start) & ((recorded - start) % step == 0)
        if stop is not None:
            keep &= recorded < stop
        return np.flatnonzero(keep)
    wanted = np.atleast_1d(np.asarray(generations))
    if wanted.size == 0:
        return np.zeros(0, np.int64)
    if wanted.ndim != 1 or not np.issubdtype(wanted.dtype, np.integer):
        raise ValueError(f"generations: None, an int, a list of ints or a slice, got {generations!r}")
    if (wanted < -len(recorded)).any():
        raise ValueError(f"generations: {int(wanted.min())} counts back past the {len(recorded)} recorded generations")
    wanted = np.where(wanted < 0, recorded[np.minimum(wanted, -1)], wanted)  # -1: the last recorded generation
    columns = np.searchsorted(recorded, wanted)
    missing = [int(g) for g, c in zip(wanted, columns) if c >= len(recorded) or recorded[c] != g]
    if missing:
        shown = ", ".join(map(str, recorded[:4])) + (f", ..., {recorded[-1]}" if len(recorded) > 4 else "")
        raise ValueError(f"generations: {missing[0]} was not recorded (this run kept generations {shown})")
    return np.unique(columns)


def _metric_names(results: Results, metrics: list[str] | None) -> list[str]:
    """The metric columns asked for (every metric by default); `failed` is always its own boolean column."""
    available = [name for name in results.metrics if name != "failed"]
    if metrics is None:
        return available
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [name for name in metrics if name not in available]
    if unknown:
        raise ValueError(f"metrics: {unknown[0]!r} is not a metric of this run (it has {', '.join(available)})")
    return metrics


def long_columns(
    results: Results,
    metrics: list[str] | None = None,
    generations: GenerationSelection = None,
    max_rows: float | None = None,
) -> dict[str, np.ndarray]:
    """Columns of the tidy table: chain_id, every knob and static label, generation (its true number), failed, metrics.

    One row per chain x selected recorded generation, chain by chain; (chain, generation) cells no chain has computed
    yet (a partial run) are left out. Only the selected generation columns are read from the (memory-mapped) metric
    files. `max_rows` (default MAX_ROWS) bounds chains x selected generations; np.inf lifts it.
    """
    names = _metric_names(results, metrics)
    columns = generation_columns(results.generations, generations)
    limit = MAX_ROWS if max_rows is None else max_rows
    rows = results.num_chains * len(columns)
    if rows > limit:
        raise ValueError(
            f"to_dataframe: {results.num_chains:,} chains x {len(columns):,} generations = {rows:,} rows, above "
            f"max_rows = {limit:,}; select generations (e.g. generations=-1 or slice(None, None, 100)) or pass a "
            f"larger max_rows"
        )
    whole = len(columns) == len(results.generations)

    def selected(values: np.ndarray) -> np.ndarray:
        return values if whole else values[:, columns]

    # `failed` is written (0 or 1, finite) for every computed cell, failed chains included; older runs without it
    # fall back to any finite metric.
    if "failed" in results.metrics:
        failed = selected(results.metrics["failed"])
        computed = np.isfinite(failed)
    else:
        failed = None
        computed = np.zeros((results.num_chains, len(columns)), bool)
        for values in results.metrics.values():
            computed |= np.isfinite(selected(values))
    chain_index, column = np.nonzero(computed)  # row-major: chain by chain, generations in order
    table = {"chain_id": results.chain_ids[chain_index].astype(np.int64)}
    for name, values in results.knobs.items():
        table[name] = values[chain_index]
    table["generation"] = results.generations[columns][column].astype(np.int64)
    table["failed"] = (failed[chain_index, column] == 1) if failed is not None else np.zeros(len(column), bool)
    for name in names:
        table[name] = selected(results.metrics[name])[chain_index, column]
    return table


def to_dataframe(
    results: Results,
    metrics: list[str] | None = None,
    generations: GenerationSelection = None,
    max_rows: float | None = None,
):
    """pandas.DataFrame of long_columns: one row per chain x selected generation (group with results.group_fields)."""
    pandas = require("pandas", "Results.to_dataframe")
    return pandas.DataFrame(long_columns(results, metrics, generations, max_rows))


def to_xarray(results: Results, metrics: list[str] | None = None, generations: GenerationSelection = None):
    """xarray.Dataset, dims (chain, generation): one variable per metric plus `failed` (bool) and each event's
    first generation (`<event>_generation`, -1: never); chain_id, knobs and labels are chain coordinates.

    `generation` holds the true generation numbers; `chain` has no index (ids of unrelated merged runs may repeat), so
    ds.set_index(chain=["regime", "real_fraction", "seed"]).unstack("chain") gives one dimension per knob.
    """
    xarray = require("xarray", "Results.to_xarray")
    names = _metric_names(results, metrics)
    columns = generation_columns(results.generations, generations)
    whole = len(columns) == len(results.generations)

    def selected(values: np.ndarray) -> np.ndarray:
        return values if whole else values[:, columns]  # all columns: the file mapping itself, read lazily

    variables = {name: (("chain", "generation"), selected(results.metrics[name])) for name in names}
    if "failed" in results.metrics:
        variables["failed"] = (("chain", "generation"), selected(results.metrics["failed"]) == 1)
    for name, first in results.event_generation.items():
        variables[f"{name}_generation"] = ("chain", np.asarray(first, np.int64))
    coords = {"generation": results.generations[columns].astype(np.int64), "chain_id": ("chain", results.chain_ids)}
    coords.update({name: ("chain", values) for name, values in results.knobs.items()})
    # JSON, so the Dataset writes to netCDF/zarr as it is.
    attrs = {"config": json.dumps(results.config, default=str), "group_fields": json.dumps(results.group_fields)}
    return xarray.Dataset(variables, coords=coords, attrs=attrs)
