"""Small multiples for figures with many lines: one panel per value of the outermost swept knob, shared axes, one
legend outside the data, a colour per line that is the same in every panel.
"""

from __future__ import annotations

import math

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
    """Log scale on `axis`'s y (shared y: every panel) with plain-text labels at the powers of ten, none between."""
    ticker = matplotlib_module().ticker
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(ticker.FuncFormatter(power_of_ten))
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
    for axis in axes:
        axis.grid(alpha=0.3)
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
    figure.savefig(path, dpi=110)
