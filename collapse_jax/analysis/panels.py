"""Figure layout: one panel per line up to LEGEND_LINES lines (else per value of the outermost swept knob), shared
axes, one legend outside the data, a colour per line that is the same in every panel, titles naming shared settings.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable

import numpy as np

# Above this many lines a single panel is split (readers tell about six colours apart); above LEGEND_LINES lines in a
# panel the bands and the per-line legend are dropped (they hide the medians), and the report's tables carry labels.
MAX_LINES = 6
LEGEND_LINES = 12


def matplotlib_module():
    """matplotlib with its Figure class, imported at the first figure (a run without plots never pays for it; a test
    checks experiments.main does not import it). Figures are built without pyplot: no GUI backend to pick, no global
    figure registry to close, less to import; savefig renders PNGs with Agg."""
    import matplotlib.figure
    import matplotlib.ticker

    return matplotlib


def _key(value) -> str:
    return repr(value)  # NaN != NaN and mixed types: compare labels by their text


def outermost(labels: list[dict]) -> str | None:
    """The varying field that changes least often along the lines' order (chain order: static groups, then the
    config's sweep order), ties to the one with fewer values: the sweep's outermost knob. None if nothing varies."""
    fields = list(dict.fromkeys(f for row in labels for f in row))
    scored = []
    for index, field in enumerate(fields):
        values = [_key(row.get(field)) for row in labels]
        distinct = len(set(values))
        if distinct > 1:
            changes = sum(a != b for a, b in zip(values, values[1:]))
            scored.append((changes, distinct, index, field))
    return min(scored)[3] if scored else None


def split(labels: list[dict], max_lines: int = MAX_LINES) -> tuple[str | None, list[tuple[object, list[int]]]]:
    """(panel field, [(its value, line indices)]): one panel when at most max_lines lines, else one per value of the
    outermost field (values in first-seen order)."""
    field = outermost(labels) if len(labels) > max_lines else None
    if field is None:
        return None, [(None, list(range(len(labels))))]
    groups: dict[str, tuple[object, list[int]]] = {}
    for index, row in enumerate(labels):
        groups.setdefault(_key(row.get(field)), (row.get(field), []))[1].append(index)
    return field, list(groups.values())


def rest(labels: dict, field: str | None) -> dict:
    """A line's labels without the panel field (its panel title says it)."""
    return {k: v for k, v in labels.items() if k != field}


def colours(names: list[str]) -> dict[str, object]:
    """One colour per distinct line name, the same in every panel: tab10 without its grey (grey draws the other lines'
    medians in a one-line panel) up to nine names, viridis beyond."""
    unique = list(dict.fromkeys(names))
    colormaps = matplotlib_module().colormaps
    palette = [index for index in range(10) if index != 7]  # tab10's 7 is grey
    if len(unique) <= len(palette):
        return {name: colormaps["tab10"](index) for index, name in zip(palette, unique)}
    return {name: colour for name, colour in zip(unique, colormaps["viridis"](np.linspace(0, 0.92, len(unique))))}


def colour_scale(labels: list[dict], panel_field: str | None) -> tuple[str, object] | None:
    """(field, matplotlib Normalize) to colour many lines by value: the numeric field other than the panel's that
    changes most often (the sweep's innermost numeric knob), so a colourbar names what a legend of dozens cannot."""
    fields = list(dict.fromkeys(f for row in labels for f in row if f != panel_field))
    scored = []
    for index, field in enumerate(fields):
        values = [row.get(field) for row in labels]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in values):
            continue
        if len(set(values)) > 1:
            scored.append((sum(a != b for a, b in zip(values, values[1:])), -index, field))
    if not scored:
        return None
    field = max(scored)[2]
    values = [row[field] for row in labels]
    return field, matplotlib_module().colors.Normalize(min(values), max(values))


# Plain-text powers of ten for log axes: matplotlib's default labels are mathtext, parsed at ~7 ms a label (most of a
# log-scale figure's drawing time), for the same "10⁻²".
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(value: float, position: int | None = None) -> str:
    """A log axis's tick label: '10⁻²' at a power of ten, else the value as printed ('%g')."""
    exponent = np.log10(value) if value > 0 else np.nan
    if np.isfinite(exponent) and abs(exponent - round(exponent)) < 1e-9:
        return "10" + str(int(round(exponent))).translate(_SUPERSCRIPT)
    return f"{value:g}"


def log_y(axis) -> None:
    """Log scale on `axis`'s y (shared y: every panel) with plain-text labels at the powers of ten, none between, and
    unlabelled minor ticks at 2 and 5 times them."""
    ticker = matplotlib_module().ticker
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(ticker.FuncFormatter(power_of_ten))
    # 2 and 5 (not 2..9): a tick is a few artists to build and draw, and 2..9 made the minor ticks 13% of a report.
    axis.yaxis.set_minor_locator(ticker.LogLocator(subs=(2.0, 5.0)))
    axis.yaxis.set_minor_formatter(ticker.NullFormatter())


def subplots(count: int, width: float = 4.6, height: float = 3.4):
    """Figure and flat list of `count` axes sharing x and y, at most three per row (four: two rows of two; unused ones
    hidden)."""
    columns = 2 if count == 4 else min(count, 3)
    rows = math.ceil(count / columns)
    figure = matplotlib_module().figure.Figure(
        figsize=(width * columns if count > 1 else 7, height * rows if count > 1 else 4.2)
    )
    axes = figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)
    axes = list(axes.ravel())
    for axis in axes[count:]:
        axis.set_visible(False)
    return figure, axes[:count]


def finish(
    figure, axes: list, handles: dict, path: str, title: str, xlabel: str, ylabel: str, scale: tuple | None = None
) -> None:
    """Titles, labels, grid, the legend outside the data (right of the panels; above LEGEND_LINES lines a colourbar
    for colour_scale's field instead), then save.

    The margins are laid out here in inches (the figure grows around its panels) rather than by tight_layout or
    savefig's bbox_inches="tight": each of those draws every tick label once more before the PNG is drawn, and the
    drawing is most of a report's time.
    """
    ticker = matplotlib_module().ticker
    for axis in axes:
        axis.grid(alpha=0.3)
        # At most ~6 ticks an axis: every tick is a few artists to build and draw, most of a small figure's time.
        for which in (axis.xaxis, axis.yaxis):
            if isinstance(which.get_major_locator(), ticker.MaxNLocator):
                which.set_major_locator(ticker.MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    places = [(axis.get_subplotspec().rowspan.start, axis.get_subplotspec().colspan.start) for axis in axes]
    for axis, (row, column) in zip(axes, places):
        if not any(c == column and r > row for r, c in places):  # the lowest panel of its column
            axis.set_xlabel(xlabel)
            axis.xaxis.set_tick_params(labelbottom=True)
        if column == 0:
            axis.set_ylabel(ylabel)
    legend = scale is None and handles and len(handles) <= LEGEND_LINES
    # A 7-point legend label is about 0.55 x 7 points per character; the handle and padding add 0.6 inch.
    side = 0.6 + max(map(len, handles)) * 7 * 0.55 / 72 if legend else (1.1 if scale is not None else 0.2)
    width, height = figure.get_size_inches()  # the panels' area
    # Above the panels: the title's lines (9 points, ~0.17 inch each), a panel title (~0.3 inch; 0.15 per extra line).
    panel_lines = max(axis.get_title().count("\n") for axis in axes)
    left, bottom, top = 0.85, 0.6, 0.45 + 0.17 * (title.count("\n") + 1) + 0.15 * panel_lines
    total_width, total_height = left + width + side, bottom + height + top
    figure.set_size_inches(total_width, total_height)
    figure.subplots_adjust(
        left=left / total_width,
        right=(left + width) / total_width,
        bottom=bottom / total_height,
        top=1 - top / total_height,
        wspace=0.08,
        hspace=0.3,
    )
    figure.suptitle(title, fontsize=9, x=(left + width / 2) / total_width, y=1 - 0.08 / total_height, va="top")
    if scale is not None:
        mappable = matplotlib_module().cm.ScalarMappable(norm=scale[1], cmap="viridis")
        bar = figure.add_axes(((left + width + 0.2) / total_width, bottom / total_height, 0.15 / total_width,
                               height / total_height))  # fmt: skip
        figure.colorbar(mappable, cax=bar, label=scale[0])
    elif legend:
        figure.legend(
            list(handles.values()), list(handles), loc="upper left", fontsize=7, frameon=False,
            bbox_to_anchor=((left + width + 0.1) / total_width, 1 - top / total_height),
        )  # fmt: skip
    # zlib level 1: 28 ms instead of level 6's 44 ms to encode a 4-panel figure, for a PNG 10% larger.
    figure.savefig(path, dpi=110, pil_kwargs={"compress_level": 1})


def later(figures: list | None, draw: Callable, *arguments) -> None:
    """Draw one figure now (`figures` None), or queue it on `figures` for draw_all."""
    if figures is None:
        draw(*arguments)
    else:
        figures.append((draw, arguments))


def draw_all(figures: list) -> None:
    """Draw the queued figures: every second one in a forked copy of this process when it may run on two cores.

    Drawing is most of a report's time and each figure is independent, so two free cores draw a report in about half
    the time (on busy ones the fork costs ~5% more CPU); the fork inherits the loaded results (nothing is pickled).
    Not once jax is loaded (a run's own report): a fork of a process with jax's threads may deadlock. A failure in the
    fork is redrawn here, raising its own error.
    """
    # Linux only (sched_getaffinity): macOS's system libraries are not fork-safe, Windows has no fork.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if len(figures) < 2 or cores < 2 or "jax" in sys.modules:
        for draw, arguments in figures:
            draw(*arguments)
        return
    mine, theirs = figures[0::2], figures[1::2]
    matplotlib_module()  # imported once, here, for both processes (0.3-0.5 s)
    sys.stdout.flush()  # nothing buffered before the fork is written twice
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            for draw, arguments in theirs:
                draw(*arguments)
            code = 0
        finally:
            os._exit(code)  # the fork never returns into the caller's code
    try:
        for draw, arguments in mine:
            draw(*arguments)
    finally:
        _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        for draw, arguments in theirs:
            draw(*arguments)


def setting(config: dict, path: str):
    """config[path] for a dotted path in a stored (plain dict) config; None where absent."""
    node = config
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def fixed_settings(config: dict) -> str:
    """The settings every line of a figure shares, for its title: family, M, regime, real fraction and curation (a
    swept one says so: the panel titles name its values). Curation is always named, `none` included."""
    parts = [str(setting(config, "model.name"))]
    curation = setting(config, "curation.name") or "none"
    shown = (
        ("M", "samples_per_generation"),
        ("regime", "regime.name"),
        ("real_fraction", "regime.real_fraction"),
        ("curation", None),
    )
    for name, path in shown:
        value = curation if path is None else setting(config, path)
        if isinstance(value, (list, tuple)):
            value = value[0] if len(set(map(str, value))) == 1 else "swept"
        if value is not None:
            parts.append(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}")
    names = curation if isinstance(curation, (list, tuple)) else [curation]
    if "likelihood_filter" in names and setting(config, "curation.keep_quantiles") is not None:
        parts.append(f"keep_quantiles={tuple(setting(config, 'curation.keep_quantiles'))}")
    if (setting(config, "curation.oversample") or 1) != 1:
        parts.append(f"oversample={setting(config, 'curation.oversample')}")
    return ", ".join(parts)


def one_panel_per_line(count: int) -> bool:
    """Whether a figure of `count` lines gets one panel per line: overlapping 10-90% bands of two or more lines blend
    into one colour, so each line keeps its band in its own panel (the others' medians faint behind it); above
    LEGEND_LINES lines the bands go and the lines share panels coloured by value."""
    return 1 < count <= LEGEND_LINES


def panel_title(text: str, width: int = 60) -> str:
    """A panel's title broken after a comma into lines of at most `width` characters (panels stand three a row)."""
    lines = [""]
    for part in text.split(", "):
        candidate = f"{lines[-1]}, {part}" if lines[-1] else part
        if len(candidate) > width and lines[-1]:
            lines[-1] += ","
            lines.append(part)
        else:
            lines[-1] = candidate
    return "\n".join(lines)


def draw_other_medians(axis, x_values: list, medians: list, own: int) -> None:
    """The other lines' medians, thin and grey, behind a panel's own line."""
    for index, (x, median) in enumerate(zip(x_values, medians)):
        if index != own:
            axis.plot(x, median, color="0.75", linewidth=0.8, zorder=1)


def line_panel_legend(handles: dict, colour, others: bool, band: bool) -> None:
    """Generic legend entries for one-line panels (the panel titles name the lines), only for what is drawn."""
    lines = matplotlib_module().lines
    handles.setdefault("median over seeds", lines.Line2D([], [], color=colour))
    if band:
        patches = matplotlib_module().patches
        handles.setdefault("10-90% band over seeds", patches.Patch(color=colour, alpha=0.25, linewidth=0))
    if others:
        handles.setdefault("the other lines' medians", lines.Line2D([], [], color="0.75", linewidth=0.8))
