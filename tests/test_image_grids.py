"""Tests of the sample-image grid layout (tiling and the generations a long run shows)."""

import numpy as np

from collapse_jax.analysis import image_grids


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
