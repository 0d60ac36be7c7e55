"""report.md's "error sources" section: when a run sweeps Shumailov et al.'s three error switches (and a sampler's, the
fourth), small multiples (one panel per switch combination, shared axes) of each report metric, and a drift table.

Drift rate = the least-squares slope of log(metric) against generation over the last half of the run, per chain
(median and 10-90% over chains): a constant relative change per generation, so 0 is "no drift after the first fit".
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from collapse_jax.analysis import breakdown, panels
from collapse_jax.analysis.breakdown import knob_label
from collapse_jax.analysis.results import Results  # noqa: E402
from collapse_jax.models import base, contract  # noqa: E402

# Shumailov et al.'s three sources, and a diffusion sampler's own discretization / truncation error.
SOURCES = ("statistical", "expressivity", "approximation", "sampler")
# How a panel names a budget switch's value ("M = 1024, 2 layers, lr 0.0001"); other columns read "name value".
SETTING_FORMATS = {
    "samples_per_generation": "M = {}",
    "num_layers": "{} layers",
    "depth": "depth {}",
    "width": "width {}",
    "latent_dim": "latent {}",
    "learning_rate": "lr {}",
    "train_steps": "{} steps",
    "sampling_steps": "{} sampler steps",
    "truncation": "t0 {}",
}


def _number(value, missing: float = np.inf) -> float:
    """A label as a number (None, NaN or a non-number: `missing`)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return missing
    return missing if np.isnan(number) else number


def family_switches(family_name: Any) -> dict[str, contract.ErrorSwitch]:
    """The ErrorSwitch of each results column the family declares (ErrorSources on its class); none when the family
    declares none or cannot be imported here. Imports the family (jax, for the built-ins: 1.5 s of a report)."""
    try:
        family = base.family_class(family_name)
    except (ValueError, ImportError):
        return {}
    if family is None or not contract.supports(family, contract.ErrorSources):
        return {}
    return dict(family.error_source_switches)


def declared_switches(results: Results) -> dict[str, contract.ErrorSwitch]:
    """The run's ErrorSwitch per results column: as run.json records them, else from the family's class."""
    if results.error_source_switches is None:
        return family_switches((results.config.get("model") or {}).get("name", ""))
    return {
        name: contract.ErrorSwitch(**{**fields, "off": tuple(fields.get("off", ()))})
        for name, fields in results.error_source_switches.items()
    }


def _rule(switch: contract.ErrorSwitch, largest: float) -> tuple:
    """(source, turns_on(value, context), default) of one declared switch; `largest` is a budget's run maximum."""
    if switch.budget:
        return switch.source, lambda value, context: _number(value, largest) < largest, largest
    if switch.below is not None:
        # A missing comparand (no num_outcomes) leaves the source off: nothing says the family is too small.
        return (
            switch.source,
            lambda value, context: _number(value) < _number(context.get(switch.below), -np.inf),
            switch.default,
        )
    if switch.above is not None:
        return switch.source, lambda value, context: _number(value, switch.above) > switch.above, switch.default
    return switch.source, lambda value, context: str(value).lower() not in switch.off, switch.default


def run_switches(results: Results) -> dict:
    """{column: (source, turns_on, default)} of the run's family; a budget switch is on below the largest value in the
    run (and dropped when the run lacks its column)."""
    switches = {}
    for name, switch in declared_switches(results).items():
        if switch.budget and name not in results.knobs:
            continue
        largest = float(np.nanmax(results.knobs[name].astype(np.float64))) if switch.budget else np.nan
        switches[name] = _rule(switch, largest)
    return switches


def swept_switches(results: Results) -> list[str]:
    """The switch columns the run sweeps (two or more values)."""
    switches = run_switches(results)
    return [name for name in switches if name in results.knobs and len(np.unique(results.knobs[name].astype(str))) > 1]


def sources_on(labels: dict, context: dict | None, switches: dict) -> tuple[str, ...]:
    """The error sources a combination of switch values turns on (a switch the run lacks counts as its default);
    `context` holds what a switch is compared with (the model's num_outcomes, truth_components), labels first."""
    context = {**(context or {}), **labels}
    on = {
        source
        for name, (source, turns_on, default) in switches.items()
        if turns_on(labels[name] if name in labels else default, context)
    }
    return tuple(source for source in SOURCES if source in on)


def combination_title(on: tuple[str, ...], settings: str = "") -> str:
    """'statistical + approximation' (the sources on), 'none (all off)' when all are off.

    A run with budget switches (a family without an exact fit: VAE, LM, a learned diffusion denoiser) has no setting
    where a source is off, only less of it: its title is the `settings` compared ("M = 1024, 2 layers, lr 0.0001"),
    then the sources raised above the run's largest budgets, or "largest budgets".
    """
    if settings:
        return f"{settings}: {' + '.join(on) if on else 'largest budgets'}"
    return " + ".join(on) if on else "none (all off)"


def _setting(name: str, value: Any) -> str:
    """One switch value as a panel names it (SETTING_FORMATS; numbers in %g)."""
    number = _number(value, np.nan)
    text = f"{number:g}" if np.isfinite(number) else str(value)
    return SETTING_FORMATS.get(name, name + " {}").format(text)


def settings_label(switch_labels: dict, budgets: set[str], swept: list[str]) -> str:
    """The swept switches' values of a panel, when the run has a budget switch ('' otherwise: the sources on name
    it)."""
    if not budgets & set(switch_labels):
        return ""
    return ", ".join(_setting(name, switch_labels[name]) for name in swept if name in switch_labels)


def drift_rates(values: np.ndarray, generations: np.ndarray) -> np.ndarray:
    """Per chain: slope of log(values) vs generation over the last half of the recorded generations ([chains]).

    NaN for a chain with a non-positive or non-finite value there (its log has no slope).
    """
    half = generations >= generations[-1] / 2.0
    x, y = generations[half].astype(np.float64), values[:, half].astype(np.float64)
    valid = np.all(np.isfinite(y) & (y > 0), axis=1)
    logs = np.log(np.where(valid[:, None], y, 1.0))
    centred = x - x.mean()
    slopes = (logs - logs.mean(axis=1, keepdims=True)) @ centred / np.sum(centred**2)
    return np.where(valid, slopes, np.nan)


def factor_two_generation(median: np.ndarray, generations: np.ndarray) -> tuple[str, float | None]:
    """("/2" or "x2", g): the first generation g where a falling median reaches half its generation-0 value, or a
    rising one twice it (linear interpolation between recorded generations); g None: not within the run."""
    start = median[0]
    falling = median[-1] <= start
    target = 0.5 * start if falling else 2.0 * start
    if not np.isfinite(start) or start <= 0:
        return ("/2" if falling else "x2"), None
    crossed = np.flatnonzero(median <= target) if falling else np.flatnonzero(median >= target)
    if len(crossed) == 0:
        return ("/2" if falling else "x2"), None
    i = crossed[0]
    x0, x1, y0, y1 = generations[i - 1], generations[i], median[i - 1], median[i]
    return ("/2" if falling else "x2"), float(x0 + (y0 - target) / (y0 - y1) * (x1 - x0))


def _budget_columns(results: Results) -> set[str]:
    """The run's switch columns that are budgets (on below the run's largest value)."""
    declared = declared_switches(results)
    return {name for name in run_switches(results) if declared[name].budget}


def _lines(results: Results) -> list[dict]:
    """One entry per knob group: its panel (switch values), title, legend (the other labels) and chain indices."""
    entries = []
    switches = run_switches(results)
    budgets, swept = _budget_columns(results), swept_switches(results)
    for labels, indices in results.knob_groups():
        # Every switch column the run has (swept or not: a fixed population_fit still says which sources are on).
        switch_labels = {k: labels.get(k, results.knobs[k][indices[0]]) for k in switches if k in results.knobs}
        others = {
            k: v
            for k, v in labels.items()
            if k not in switches and not (isinstance(v, float) and np.isnan(v))  # a knob the group lacks (NaN)
        }
        # What a `below` switch is compared with (the discrete family's num_bins with its num_outcomes): the group's
        # own column when the run has one, else the config.model field.
        context = dict(results.config.get("model") or {})
        context.update({k: column[indices[0]] for k, column in results.knobs.items()})
        sources = sources_on(switch_labels, context, switches)
        title = combination_title(sources, settings_label(switch_labels, budgets, swept))
        entries.append(
            {"switches": switch_labels, "sources": sources, "title": title, "others": others, "indices": indices}
        )
    # A line is named by what tells it apart inside its panel (the descent knobs of a gradient-descent panel are the
    # panel's own setting, not a line's).
    for entry in entries:
        mates = [e["others"] for e in entries if e["switches"] == entry["switches"]]
        entry["others"] = {k: v for k, v in entry["others"].items() if len({str(m.get(k)) for m in mates}) > 1}
    entries.sort(key=lambda e: (len(e["sources"]), [SOURCES.index(s) for s in e["sources"]]))
    return entries


def plot_small_multiples(results: Results, metric: str, switches: list[str], path: str) -> None:
    """One panel per switch combination (shared axes): median and 10-90% band over chains vs generation."""
    entries = _lines(results)
    combinations = list(dict.fromkeys(tuple(sorted(e["switches"].items())) for e in entries))
    columns = min(4, len(combinations))
    rows = -(-len(combinations) // columns)
    figure = panels.matplotlib_module().figure.Figure(figsize=(3.3 * columns, 2.7 * rows))
    axes = figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False).ravel()
    generations = results.generations
    values = results.metrics[metric]
    finite = values[np.isfinite(values)]
    positive = finite[finite > 0]
    # Log scale when the positive values span decades (a collapsing tail mass reaches 1e-9, or underflows to 0): the
    # bands are clipped at a floor 1e-6 below the largest value, so zeros draw at the bottom edge.
    log_scale = positive.size > 0 and np.quantile(positive, 0.9) / np.quantile(positive, 0.1) > 100
    floor = max(positive.min(), 1e-6 * positive.max()) if log_scale else None
    for axis, panel in zip(axes, combinations):
        members = [e for e in entries if tuple(sorted(e["switches"].items())) == panel]
        for entry in members:
            chains = values[entry["indices"]]
            chains = chains[~results.failed[entry["indices"]]]
            if chains.size == 0:
                continue
            q10, median, q90 = np.nanquantile(chains, [0.1, 0.5, 0.9], axis=0)
            if log_scale:
                q10, median, q90 = (np.maximum(q, floor) for q in (q10, median, q90))
            label = knob_label(entry["others"]) if entry["others"] else None
            (line,) = axis.plot(generations, median, linewidth=1.4, label=label)
            axis.fill_between(generations, q10, q90, color=line.get_color(), alpha=0.2, linewidth=0)
        if metric.endswith("ratio"):
            axis.axhline(1.0, color="0.5", linewidth=0.6, linestyle=":")  # the truth's value of a ratio metric
        axis.set_title(members[0]["title"].replace(": ", ":\n", 1), fontsize=8)
        axis.grid(alpha=0.3)
        if log_scale:
            panels.log_y(axis)  # plain-text powers of ten: mathtext labels cost ~7 ms each
        if axis.get_legend_handles_labels()[1] and len(axis.get_legend_handles_labels()[1]) > 1:
            axis.legend(fontsize=6, loc="best")
    if log_scale:  # once all panels are drawn: setting it earlier would freeze the shared axis at the first panel's
        axes[0].set_ylim(floor, 2.0 * positive.max())
    for axis in axes[len(combinations) :]:
        axis.set_visible(False)
    for axis in axes[-columns:]:
        axis.set_xlabel("generation")
    for axis in axes[::columns]:
        axis.set_ylabel(metric)
    figure.suptitle(f"{metric} by error source switched on: median over chains, 10-90% band", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100, pil_kwargs={"compress_level": 1})  # zlib level 1, as panels.finish


def _cell(values: np.ndarray) -> str:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "n/a"
    q10, median, q90 = np.quantile(values, [0.1, 0.5, 0.9])
    return f"{median:+.2e} [{q10:+.1e}, {q90:+.1e}]"


def section(results: Results, output: str, make_plots: bool = True) -> list[str]:
    """The "error sources" section of report.md (empty unless the run sweeps at least one switch)."""
    if not results.group_fields:  # nothing but the seed varies, so no switch is swept: no declarations to read
        return []
    switches = swept_switches(results)
    if not switches:
        return []
    sources = run_switches(results)
    metrics = breakdown.settings(results.config, list(results.metrics)).metrics
    generations = results.generations
    lines = [
        "## Error sources (Shumailov et al.'s statistical / expressivity / approximation errors, and the sampler's)",
        "",
        f"Switches swept: {', '.join(f'`{s}` ({sources[s][0]})' for s in switches)}. One panel per combination, "
        "titled by the sources switched on (a switch not swept counts at its value in the run; with budget switches, "
        "by the settings compared and the sources raised above the run's largest budgets); shared axes. "
        "Drift rate: per chain, the slope of log(metric) against "
        f"generation over generations >= {generations[-1] / 2:g} (median [10%, 90%] over chains; 0 = no drift). "
        "Last column: the generation where the median first falls to half (/2) or rises to twice (x2) its generation-0 "
        "value.",
        "",
    ]
    for metric in metrics:
        lines += [f"### {metric}", ""]
        if make_plots:
            name = f"error_sources_{metric}.png"
            plot_small_multiples(results, metric, switches, os.path.join(output, "plots", name))
            lines += [f"![{metric} by error source](plots/{name})", ""]
        lines += [
            "| sources on | line | chains | gen 0 median | final median | drift rate / generation | /2 or x2 at |",
            "|---|---|---|---|---|---|---|",
        ]
        for entry in _lines(results):
            indices = entry["indices"][~results.failed[entry["indices"]]]
            values = results.metrics[metric][indices]
            if values.size == 0:
                continue
            median = np.nanmedian(values, axis=0)
            direction, crossing = factor_two_generation(median, generations)
            lines.append(
                f"| {entry['title']} | {knob_label(entry['others'])} | "
                f"{len(indices)} | {median[0]:.4g} | {median[-1]:.4g} | {_cell(drift_rates(values, generations))} | "
                f"{'-' if crossing is None else f'{direction} at {crossing:.1f}'} |"
            )
        lines.append("")
    return lines
