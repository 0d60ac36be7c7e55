"""Sample grids from a run's per-generation artifacts, one PNG per knob group: image grids (the VAE's and diffusion's
`sample_images`; rows = generations, columns = samples of one chain) and 2-D scatters (scatter_grids.py).
"""

from __future__ import annotations

import os

import numpy as np

from collapse_jax.analysis import panels, results, scatter_grids
from collapse_jax.analysis.breakdown import knob_label
from collapse_jax.store import artifacts

# More rows than this and a grid's rows become too thin to read; longer runs show evenly spaced generations.
MAX_ROWS = 21
# Artifacts drawn in the report: images [k, H, W] in [0, 1] as grids, points [k, 2] as scatter small multiples.
IMAGE_ARTIFACTS = ("sample_images", "decoded_means")
POINT_ARTIFACTS = ("sample_points",)


def tile(images: np.ndarray, gap: int = 1) -> np.ndarray:
    """[rows, columns, H, W] -> one [rows (H + gap) - gap, columns (W + gap) - gap] canvas, gaps at NaN."""
    rows, columns, height, width = images.shape
    canvas = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan, np.float32)
    for row in range(rows):
        for column in range(columns):
            top, left = row * (height + gap), column * (width + gap)
            canvas[top : top + height, left : left + width] = images[row, column]
    return canvas


def shown_generations(num_generations: int, max_rows: int = MAX_ROWS) -> list[int]:
    """All generations 0..num_generations, or `max_rows` evenly spaced ones (first and last included)."""
    if num_generations + 1 <= max_rows:
        return list(range(num_generations + 1))
    return sorted({int(round(g)) for g in np.linspace(0, num_generations, max_rows)})


def load_artifacts(workdir: str, name: str, generations: list[int]) -> dict[int, dict[int, np.ndarray]]:
    """{generation: {chain id: artifact}} for the generations saved so far (a partial run has fewer)."""
    loaded = {}
    for generation in generations:
        try:
            ids, values = artifacts.load(workdir, name, generation)
        except FileNotFoundError:
            continue
        loaded[generation] = dict(zip(ids.tolist(), values))
    return loaded


def write_sample_grids(workdir: str, name: str = "sample_images", max_rows: int = MAX_ROWS) -> list[str]:
    """Write <workdir>/plots/<name>_group_<i>.png per knob group (its lowest-seed chain); returns the paths. Point
    artifacts [k, 2] become scatter small multiples (at most scatter_grids.MAX_PANELS generations)."""
    return [path for _, path in _write(results.load(workdir), workdir, name, max_rows)]


def _write(run: results.Results, workdir: str, name: str, max_rows: int) -> list[tuple[int, str]]:
    """write_sample_grids for a loaded run: (knob group index, PNG path) per group drawn."""
    points = name in POINT_ARTIFACTS
    rows = min(max_rows, scatter_grids.MAX_PANELS) if points else max_rows
    by_generation = load_artifacts(workdir, name, shown_generations(run.config["num_generations"], rows))
    if not by_generation:
        raise FileNotFoundError(f"--workdir: {workdir} has no {name!r} artifacts (config.model.preview_* = 0?)")
    plot_dir = os.path.join(workdir, "plots")
    os.makedirs(plot_dir, exist_ok=True)
    written = []
    for group_index, (labels, indices) in enumerate(run.knob_groups()):
        chain = indices[np.argmin(run.knobs["seed"][indices])]
        chain_id = int(run.chain_ids[chain])
        generations = [g for g, chains in by_generation.items() if chain_id in chains]
        if not generations:
            continue
        title = f"{knob_label(labels)}, seed {run.knobs['seed'][chain]}"
        path = os.path.join(plot_dir, f"{name}_group_{group_index}.png")
        if points:
            scatter_grids.draw({g: by_generation[g][chain_id] for g in generations}, title, path)
        else:
            images = np.stack([by_generation[g][chain_id] for g in generations])  # [rows, k, H, W]
            _draw(tile(images), generations, images.shape[2], title, path)
        written.append((group_index, path))
    return written


def section(run: results.Results, workdir: str) -> list[str]:
    """report.md's "Samples per generation": the grids of every image or point artifact the run saved (none: [])."""
    labels = [knob_label(group_labels) for group_labels, _ in run.knob_groups()]
    lines = []
    for name in IMAGE_ARTIFACTS + POINT_ARTIFACTS:
        try:
            written = _write(run, workdir, name, MAX_ROWS)
        except FileNotFoundError:
            continue
        for group, path in written:
            lines += [f"![{name}, {labels[group]}](plots/{os.path.basename(path)})", ""]
    if not lines:
        return []
    return [
        "## Samples per generation",
        "",
        "Per knob group, its lowest-seed chain: rows (images) or panels (2-D points) are generations, 0 = the model "
        "fit on real data.",
        "",
        *lines,
    ]


def _draw(canvas: np.ndarray, generations: list[int], height: int, title: str, path: str) -> None:
    """Grey-scale canvas (pixels in [0, 1], ink dark) with generation row labels; gaps and NaN (failed) pixels blue."""
    matplotlib = panels.matplotlib_module()
    figure = matplotlib.figure.Figure(figsize=(max(3.0, canvas.shape[1] / 12), max(2.0, canvas.shape[0] / 12 + 0.6)))
    axis = figure.subplots()
    colormap = matplotlib.colormaps["gray_r"].with_extremes(bad="lightsteelblue")
    axis.imshow(np.ma.masked_invalid(canvas), cmap=colormap, vmin=0.0, vmax=1.0, interpolation="nearest")
    axis.set_yticks([row * (height + 1) + (height - 1) / 2 for row in range(len(generations))], generations)
    axis.set_xticks([])
    axis.set_ylabel("generation")
    axis.set_title(title, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
