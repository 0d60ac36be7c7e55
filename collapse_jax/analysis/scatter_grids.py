"""Scatter small multiples of a chain's 2-D samples, one panel per generation on shared axes: how a planar truth's modes
are lost or smeared across generations (image_grids.py loads the `sample_points` artifacts and calls `draw`).
"""

from __future__ import annotations

import math

import numpy as np

from collapse_jax.analysis import panels

# Panels per figure (image_grids picks evenly spaced generations, first and last included) and per row.
MAX_PANELS, COLUMNS = 12, 6


def limits(points: list[np.ndarray], margin: float = 0.05) -> tuple[float, float]:
    """One square range for both axes covering every finite point (plus `margin` of its width), so panels compare."""
    finite = np.concatenate([p[np.all(np.isfinite(p), axis=-1)] for p in points]) if points else np.zeros((0, 2))
    if finite.size == 0:
        return -1.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    pad = margin * max(high - low, 1e-6)
    return low - pad, high + pad


def draw(points_by_generation: dict[int, np.ndarray], title: str, path: str) -> None:
    """One panel per generation (in order), each a scatter of its points [k, 2]; a failed chain's NaN points are
    dropped and its panel says so."""
    generations = sorted(points_by_generation)
    columns = min(len(generations), COLUMNS)
    rows = math.ceil(len(generations) / columns)
    figure = panels.matplotlib_module().figure.Figure(figsize=(1.9 * columns, 1.9 * rows + 0.4))
    axes = figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False).ravel()
    low, high = limits([points_by_generation[g] for g in generations])
    for axis, generation in zip(axes, generations):
        points = points_by_generation[generation]
        finite = points[np.all(np.isfinite(points), axis=-1)]
        axis.scatter(finite[:, 0], finite[:, 1], s=2, alpha=0.5, linewidths=0, color="tab:blue")
        axis.set_title(f"gen {generation}" + ("" if len(finite) else " (failed)"), fontsize=8)
        axis.set_xlim(low, high)
        axis.set_ylim(low, high)
        axis.set_aspect("equal")
        axis.tick_params(labelsize=6)
    for axis in axes[len(generations) :]:
        axis.set_visible(False)
    figure.suptitle(title, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
