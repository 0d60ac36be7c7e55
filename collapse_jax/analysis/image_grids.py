"""Sample-image grids from a run's image artifacts (e.g. the VAE's `sample_images`): one PNG per knob group.

Rows are generations (0 = the model fit on real data), columns are that generation's first decoded samples of one chain.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # headless machines and clusters have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from collapse_jax.analysis import plots, results
from collapse_jax.store import artifacts  # noqa: E402

# More rows than this and a grid's rows become too thin to read; longer runs show evenly spaced generations.
MAX_ROWS = 21


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


def load_image_artifacts(workdir: str, name: str, generations: list[int]) -> dict[int, dict[int, np.ndarray]]:
    """{generation: {chain id: images [k, H, W]}} for the generations saved so far (a partial run has fewer)."""
    loaded = {}
    for generation in generations:
        try:
            ids, values = artifacts.load(workdir, name, generation)
        except FileNotFoundError:
            continue
        loaded[generation] = dict(zip(ids.tolist(), values))
    return loaded


def write_sample_grids(workdir: str, name: str = "sample_images", max_rows: int = MAX_ROWS) -> list[str]:
    """Write <workdir>/plots/<name>_group_<i>.png per knob group (its lowest-seed chain); returns the paths."""
    run = results.load(workdir)
    by_generation = load_image_artifacts(workdir, name, shown_generations(run.config["num_generations"], max_rows))
    if not by_generation:
        raise FileNotFoundError(f"--workdir: {workdir} has no {name!r} artifacts (config.model.preview_images = 0?)")
    plot_dir = os.path.join(workdir, "plots")
    os.makedirs(plot_dir, exist_ok=True)
    paths = []
    for group_index, (labels, indices) in enumerate(run.knob_groups()):
        chain = indices[np.argmin(run.knobs["seed"][indices])]
        chain_id = int(run.chain_ids[chain])
        generations = [g for g, chains in by_generation.items() if chain_id in chains]
        if not generations:
            continue
        images = np.stack([by_generation[g][chain_id] for g in generations])  # [rows, k, H, W]
        path = os.path.join(plot_dir, f"{name}_group_{group_index}.png")
        _draw(
            tile(images),
            generations,
            images.shape[2],
            f"{plots.knob_label(labels)}, seed {run.knobs['seed'][chain]}",
            path,
        )
        paths.append(path)
    return paths


def _draw(canvas: np.ndarray, generations: list[int], height: int, title: str, path: str) -> None:
    """Grey-scale canvas (pixels in [0, 1], ink dark) with generation row labels; gaps and NaN (failed) pixels blue."""
    figure, axis = plt.subplots(figsize=(max(3.0, canvas.shape[1] / 12), max(2.0, canvas.shape[0] / 12 + 0.6)))
    colormap = plt.get_cmap("gray_r").with_extremes(bad="lightsteelblue")
    axis.imshow(np.ma.masked_invalid(canvas), cmap=colormap, vmin=0.0, vmax=1.0, interpolation="nearest")
    axis.set_yticks([row * (height + 1) + (height - 1) / 2 for row in range(len(generations))], generations)
    axis.set_xticks([])
    axis.set_ylabel("generation")
    axis.set_title(title, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
