"""What a recipe's part prompts make the part region."""

from __future__ import annotations

import numpy as np

from inspector.engine.regions import select_regions
from inspector.recipe.model import PartPrompts, Recipe
from tests.helpers import SCALE, segmentation_of

SIZE = (640, 480)


def _part_with_a_strip_of_background() -> np.ndarray:
    """One segment: the part, and a strip along the image's right edge that it took in."""
    mask = np.zeros(SIZE[::-1], bool)
    mask[150:330, 200:440] = True
    mask[:, 616:] = True
    return mask


def _at(region: np.ndarray, x: float, y: float) -> bool:
    return bool(region[int(y * SCALE), int(x * SCALE)])


def test_a_strip_of_background_in_the_part_segment_is_not_the_part():
    segmentation = segmentation_of([_part_with_a_strip_of_background()], SIZE)
    recipe = Recipe(name="Label", reference_image="ref.png", part=PartPrompts(boxes=((196.0, 146.0, 444.0, 334.0),)))
    region = select_regions(segmentation, recipe).part_region
    assert _at(region, 320, 240) and _at(region, 201, 151) and _at(region, 438, 328)
    assert not region[:, int(600 * SCALE) :].any()  # not searched for defects, no features for registration


def test_a_piece_the_part_box_touches_is_the_part_even_past_the_box():
    mask = _part_with_a_strip_of_background()
    mask[230:250, 440:616] = True  # a tab joining the part to the strip
    segmentation = segmentation_of([mask], SIZE)
    recipe = Recipe(name="Label", reference_image="ref.png", part=PartPrompts(boxes=((196.0, 146.0, 444.0, 334.0),)))
    region = select_regions(segmentation, recipe).part_region
    assert _at(region, 620, 20) and _at(region, 530, 240)


def test_a_piece_near_a_box_drawn_inside_the_part_is_the_part():
    # The box sits on the part's middle; a crack cuts the part's segment in two.
    mask = np.zeros(SIZE[::-1], bool)
    mask[100:400, 100:500] = True
    mask[:, 300:304] = False
    segmentation = segmentation_of([mask], SIZE)
    recipe = Recipe(name="Label", reference_image="ref.png", part=PartPrompts(boxes=((110.0, 110.0, 290.0, 390.0),)))
    assert _at(select_regions(segmentation, recipe).part_region, 400, 250)


def test_a_piece_a_part_point_selects_is_the_part_beside_a_box_elsewhere():
    first, second = np.zeros(SIZE[::-1], bool), np.zeros(SIZE[::-1], bool)
    first[100:200, 50:200] = True
    second[300:400, 400:600] = True
    segmentation = segmentation_of([first, second], SIZE)
    prompts = PartPrompts(boxes=((45.0, 95.0, 205.0, 205.0),), points=((500.0, 350.0, 1),))
    region = select_regions(segmentation, Recipe(name="Label", reference_image="ref.png", part=prompts)).part_region
    assert _at(region, 100, 150) and _at(region, 500, 350)


def test_with_points_only_the_whole_selected_segment_is_the_part():
    # Without a box nothing says where the part ends: a defect that cuts the part's
    # segment in two must not lose the half that holds no point.
    segmentation = segmentation_of([_part_with_a_strip_of_background()], SIZE)
    recipe = Recipe(name="Label", reference_image="ref.png", part=PartPrompts(points=((320.0, 240.0, 1),)))
    region = select_regions(segmentation, recipe).part_region
    assert _at(region, 320, 240) and _at(region, 620, 20)
