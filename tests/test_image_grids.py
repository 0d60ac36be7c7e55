"""Tests of the sample grids: image tiling, the generations a long run shows, and the 2-D scatter small multiples."""

import matplotlib.image as matplotlib_image
import numpy as np
import pytest

from collapse_jax.analysis import image_grids, scatter_grids


def test_tile_puts_image_r_c_at_its_row_and_column_with_one_pixel_nan_gaps():
    images = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    canvas = image_grids.tile(images)
    assert canvas.shape == (2 * 4 + 1, 3 * 5 + 2)
    for row in range(2):
        for column in range(3):
            top, left = row * 5, column * 6
            np.testing.assert_array_equal(canvas[top : top + 4, left : left + 5], images[row, column])
    # Everything that is not an image is a gap: 2 x 3 images of 20 pixels leave the rest NaN.
    assert np.isnan(canvas).sum() == canvas.size - images.size


def test_short_runs_show_every_generation_and_long_runs_evenly_spaced_ones_with_both_ends():
    assert image_grids.shown_generations(10) == list(range(11))
    shown = image_grids.shown_generations(1000, max_rows=21)
    assert shown[0] == 0 and shown[-1] == 1000 and len(shown) == 21
    assert set(np.diff(shown)) == {50}  # 1000 / 20: evenly spaced


def test_scatter_limits_are_one_square_range_covering_every_finite_point_of_every_panel():
    points = [np.array([[0.0, -2.0], [1.0, 0.5]]), np.array([[3.0, 0.0], [np.nan, np.nan]])]
    low, high = scatter_grids.limits(points, margin=0.1)
    # Finite coordinates span [-2, 3] on either axis; 10% of the width 5 pads each side; the NaN row is ignored.
    assert (low, high) == pytest.approx((-2.5, 3.5))


def test_scatter_grid_draws_one_panel_per_generation_and_marks_a_failed_chain(tmp_path):
    path = str(tmp_path / "scatter.png")
    rng = np.random.default_rng(0)
    scatter_grids.draw(
        {0: rng.normal(size=(50, 2)), 3: np.full((50, 2), np.nan), 6: rng.normal(size=(50, 2))}, "t", path
    )
    image = matplotlib_image.imread(path)
    assert image.ndim == 3 and image.shape[1] > image.shape[0]  # three panels side by side: wider than tall
