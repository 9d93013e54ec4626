"""Candidates against the reference's pixels: unchanged surface is no defect."""

from __future__ import annotations

import cv2
import numpy as np

from inspector.engine.change import changed_fractions, differences, pixels_on_grid
from inspector.engine.rules import CLEAR_CHANGE, find_defects
from inspector.recipe.model import DefectRules
from inspector.synthetic.demo_product import demo_reference

GRID = (160, 120)  # (width, height) of the mask grid for a 640x480 image


def lit_differently(image: np.ndarray) -> np.ndarray:
    """The same scene under brighter light that falls off across the image."""
    light = np.linspace(1.25, 1.05, image.shape[1], dtype=np.float32)[None, :, None]
    return np.clip(image.astype(np.float32) * light, 0, 255).astype(np.uint8)


def grid_mask(full: np.ndarray) -> np.ndarray:
    return cv2.resize(full.astype(np.uint8), GRID, interpolation=cv2.INTER_NEAREST) > 0


def test_a_stain_has_changed_while_unchanged_surface_and_print_have_not():
    scene = demo_reference()
    reference = scene.image
    image = lit_differently(reference)
    stain = np.zeros(reference.shape[:2], np.uint8)
    cv2.circle(stain, (300, 280), 14, 1, -1)
    image[stain > 0] = (image[stain > 0] * 0.4).astype(np.uint8)
    surface = np.zeros_like(stain)  # a piece of the bare label, as the network may cut it
    surface[250:300, 340:420] = 1
    part = scene.parts[0].mask
    print_mask = part & (cv2.cvtColor(reference, cv2.COLOR_BGR2GRAY) < 80)
    masks = np.stack([grid_mask(stain), grid_mask(surface), grid_mask(print_mask)])

    shares = changed_fractions(pixels_on_grid(image, GRID), pixels_on_grid(reference, GRID), masks, grid_mask(part))
    assert shares[0] > 0.8
    assert shares[1] < 0.05 and shares[2] < 0.05


def candidates(scores, shares, *, changed_fraction, min_score=0.1, masks=None):
    h, w = 40, 60
    if masks is None:
        masks = np.zeros((len(scores), h, w), bool)
        for k in range(len(scores)):
            masks[k, 2 + 4 * k : 5 + 4 * k, 5:10] = True  # apart from each other
    return find_defects(
        masks,
        np.float32(scores),
        pixel_area=1.0,
        part_region=np.ones((h, w), bool),
        excluded=set(),
        ignore_region=np.zeros((h, w), bool),
        rules=DefectRules(min_area=1, changed_fraction=changed_fraction),
        min_score=min_score,
        changed=lambda indices: np.float32(shares)[indices],
    )


def test_confident_segments_need_some_change_and_unsure_ones_a_clear_change():
    scores = [0.6, 0.6, 0.07, 0.07]
    shares = [0.3, 0.02, CLEAR_CHANGE + 0.1, 0.3]
    kept = [c.index for c in candidates(scores, shares, changed_fraction=0.08)]
    assert kept == [0, 2]
    # Without the check, the confidence alone decides, as before.
    assert [c.index for c in candidates(scores, shares, changed_fraction=0.0)] == [0, 1]


def test_an_unchanged_piece_of_surface_does_not_hide_the_defect_it_covers():
    masks = np.zeros((2, 40, 60), bool)
    masks[0, 5:30, 5:50] = True  # a large piece of good surface, scored higher
    masks[1, 10:14, 10:14] = True  # the defect inside it
    found = candidates([0.6, 0.3], [0.03, 0.9], changed_fraction=0.08, masks=masks)
    assert [c.index for c in found] == [1]


def band_hole(reference: np.ndarray) -> np.ndarray:
    """A small dark hole on the navy band: dark on dark, what the network tends to miss."""
    hole = np.zeros(reference.shape[:2], np.uint8)
    band = np.nonzero(cv2.cvtColor(reference, cv2.COLOR_BGR2GRAY)[:, 320] < 60)[0]
    cv2.circle(hole, (320, int(band.mean())), 8, 1, -1)
    return hole > 0


def test_differences_find_a_dark_hole_on_dark_print_and_nothing_on_a_good_part():
    scene = demo_reference()
    reference = scene.image
    part = scene.parts[0].mask
    # Registration is never exact: the good part is a pixel off, and lit differently.
    good = lit_differently(np.roll(reference, (1, -1), axis=(0, 1)))
    assert differences(good, reference, part) == []

    hole = band_hole(reference)
    bad = good.copy()
    bad[hole] = (20, 20, 20)
    (found,) = differences(bad, reference, part)
    x, y = found.origin
    ys, xs = np.nonzero(hole)
    assert abs(x - xs.min()) <= 3 and abs(y - ys.min()) <= 3
    assert 0.6 < found.mask.sum() / hole.sum() < 1.4
    assert found.change > 0.3
