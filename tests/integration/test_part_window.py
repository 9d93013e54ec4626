"""The part's window: the real model sees the part larger, results stay in image pixels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inspector.engine.pipeline import InspectionPipeline
from inspector.recipe.io import load_recipe
from inspector.synthetic.demo_product import demo_background, demo_scene, write_demo_recipe


@pytest.fixture(scope="module")
def windowed(tmp_path_factory, embedded_segmenter):
    recipe = load_recipe(write_demo_recipe(tmp_path_factory.mktemp("recipe")))
    recipe = replace(recipe, model=replace(recipe.model, window="part", imgsz=480))
    return InspectionPipeline(recipe, segmenter=embedded_segmenter)


def scenes(seed: int, count: int, *, defective: bool):
    rng = np.random.default_rng(seed)
    background = demo_background()
    return [demo_scene(rng, defective=defective, background=background) for _ in range(count)]


def overlaps(box, mask) -> bool:
    x1, y1, x2, y2 = (round(v) for v in box)
    return bool(mask[max(0, y1) : y2 + 1, max(0, x1) : x2 + 1].any())


def test_defects_are_found_and_reported_where_they_are_in_the_image(windowed):
    for scene in scenes(7, 4, defective=True):
        result = windowed.inspect(scene.image)
        assert result.verdict == "FAIL"
        # The window is only what the network sees: boxes and outlines are image pixels.
        assert result.image_size == (640, 480)
        truth = np.zeros(scene.image.shape[:2], bool)
        for defect in scene.defects:
            truth |= defect.mask
        assert any(overlaps(f.box, truth) for f in result.findings), [f.box for f in result.findings]
        for finding in result.findings:
            x1, y1, x2, y2 = finding.box
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
    for scene in scenes(8, 3, defective=False):
        assert windowed.inspect(scene.image).verdict == "PASS"


def test_a_part_that_lost_its_prints_is_aligned_by_its_outline_and_fails(windowed):
    (scene,) = scenes(9, 1, defective=False)
    image = scene.image.copy()
    part = scene.parts[0].mask
    prints = np.zeros(part.shape, bool)
    for instance in scene.instances:
        if instance.label == "print":
            prints |= instance.mask
    image[prints] = np.median(image[part & ~prints], axis=0).astype(np.uint8)  # a blank label
    result = windowed.inspect(image)
    assert result.verdict == "FAIL", result.error
    assert {f.label for f in result.findings} == {"missing feature"}


def test_the_recipe_preview_shows_the_segments_inspection_uses(windowed, embedded_segmenter):
    from inspector.engine.reference import confident, preview_segments, segment_everything

    recipe, m = windowed.recipe, windowed.recipe.model
    segment = segment_everything(embedded_segmenter, recipe)
    whole, preview = preview_segments(recipe, windowed.reference_image, segment)
    used = confident(windowed.reference.segmentation, recipe)  # the reference as the pipeline segmented it
    assert preview.origin == used.origin != (0.0, 0.0)  # the part's window, not the whole image
    assert preview.image_size == used.image_size == (640, 480)
    assert len(preview) == len(used) > 0

    def in_order(boxes):
        return boxes[np.lexsort(boxes.T[::-1])]

    np.testing.assert_allclose(in_order(preview.boxes), in_order(used.boxes), atol=1.0)

    image_window = replace(recipe, model=replace(m, window="image"))
    _, of_image = preview_segments(image_window, windowed.reference_image, segment, whole=whole)
    assert of_image.origin == (0.0, 0.0)
