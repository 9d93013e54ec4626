"""Low-resolution masks drawn where they lie in the image."""

from __future__ import annotations

import numpy as np

from inspector.engine.types import Segmentation
from inspector.gui.render import region_in_image


def test_a_region_of_a_window_segmentation_is_drawn_inside_the_window():
    grid = np.zeros((20, 30), bool)
    grid[5:10, 10:20] = True  # in window pixels (scale 0.25): x 40-80, y 20-40
    window = Segmentation(
        image_size=(120, 80),
        scale=0.25,
        boxes=np.zeros((0, 4), np.float32),
        scores=np.zeros(0, np.float32),
        masks=np.zeros((0, 20, 30), bool),
        probabilities=np.zeros((0, 20, 30), np.float16),
    )
    placed = window.placed((100, 50), (640, 480))
    drawn = region_in_image(grid, placed)
    ys, xs = np.nonzero(drawn)
    assert drawn.shape == (480, 640)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (140, 179, 70, 89)
    whole = region_in_image(grid, window)
    assert whole.shape == (80, 120) and whole[20:40, 40:80].all() and whole.sum() == 800
    # A window at the image's corner, smaller than the image (a part near the corner).
    corner = region_in_image(grid, window.placed((0, 0), (640, 480)))
    assert corner.shape == (480, 640) and corner[20:40, 40:80].all() and corner.sum() == 800
