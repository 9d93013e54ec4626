"""The synthetic product generator: deterministic, pixel-exact, and trainable labels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inspector.synthetic.defects import paint_defect
from inspector.synthetic.demo_product import demo_scene
from inspector.synthetic.products import PRODUCT_KINDS, random_design, render_part
from inspector.synthetic.scene import generate_scene
from inspector.synthetic.yolo_export import mask_to_polygon, write_crops


def test_same_seed_gives_the_same_scene():
    a = generate_scene(np.random.default_rng(3))
    b = generate_scene(np.random.default_rng(3))
    np.testing.assert_array_equal(a.image, b.image)
    assert [i.label for i in a.instances] == [i.label for i in b.instances]


@pytest.mark.parametrize("kind", PRODUCT_KINDS)
def test_every_product_kind_renders_with_defects_inside_the_part(kind):
    rng = np.random.default_rng(11)
    for _ in range(5):
        scene = generate_scene(rng, designs=[random_design(rng, kind)], defect_probability=1.0, max_defects=3)
        (part,) = scene.parts
        assert part.label == kind
        assert scene.image.shape == (640, 640, 3)
        for defect in scene.defects:
            assert defect.mask.any()
            assert not (defect.mask & ~part.mask).any(), "a defect must lie on its part"


@pytest.mark.parametrize("kind", ["stain", "chip", "scratch", "hole", "missing_print"])
def test_defects_are_painted_exactly_where_their_masks_say(kind):
    rng = np.random.default_rng(5)
    canvas = np.full((400, 400, 3), 60, np.uint8)
    part = render_part(canvas, random_design(rng, "label"), center=(200, 200), angle=10, rng=rng)
    before = canvas.copy()
    defect = paint_defect(canvas, part, kind, rng=rng)
    assert defect is not None
    changed = (canvas != before).any(axis=2)
    assert not (changed & ~defect.mask).any(), "pixels changed outside the defect mask"
    assert changed[defect.mask].mean() > 0.9, "the defect mask covers pixels that were not painted"


def test_smallest_defects_are_about_twelve_pixels_across():
    rng = np.random.default_rng(21)
    sizes = []
    for _ in range(40):
        for d in generate_scene(rng, defect_probability=1.0).defects:
            if d.label in ("stain", "hole"):
                sizes.append(np.sqrt(d.mask.sum()))
    assert min(sizes) < 14
    assert max(sizes) > 25


def test_washer_polygon_keeps_its_hole():
    mask = np.zeros((120, 120), np.uint8)
    cv2.circle(mask, (60, 60), 50, 1, -1)
    cv2.circle(mask, (60, 60), 20, 0, -1)
    polygon = mask_to_polygon(mask.astype(bool))
    filled = np.zeros_like(mask)
    cv2.fillPoly(filled, [np.round(polygon).astype(np.int32)], 1)
    iou = (filled & mask).sum() / (filled | mask).sum()
    assert iou > 0.97
    assert filled[60, 60] == 0


def test_training_crops_hold_a_yolo_label_per_visible_instance(tmp_path):
    rng = np.random.default_rng(4)
    scene = generate_scene(rng, n_parts=2, defect_probability=1.0)
    count = write_crops(scene, tmp_path, "s", rng, crop=320)
    images = sorted((tmp_path / "images").glob("*.jpg"))
    labels = sorted((tmp_path / "labels").glob("*.txt"))
    assert count == len(images) == len(labels) >= 2
    for label in labels:
        for line in label.read_text().splitlines():
            values = [float(v) for v in line.split()]
            assert values[0] == 0 and len(values) >= 7 and len(values) % 2 == 1
            assert all(0.0 <= v <= 1.0 for v in values[1:])


def test_demo_product_is_one_fixtured_design():
    rng = np.random.default_rng(0)
    good = demo_scene(rng, defective=False)
    bad = demo_scene(rng, defective=True)
    assert good.image.shape == (480, 640, 3)
    assert [p.label for p in good.parts] == ["label"] == [p.label for p in bad.parts]
    assert not good.defects and bad.defects
    area_good, area_bad = good.parts[0].mask.sum(), bad.parts[0].mask.sum()
    assert abs(int(area_good) - int(area_bad)) < 0.03 * area_good


def test_committed_demo_recipe_is_what_the_demo_writes(tmp_path):
    from pathlib import Path

    from inspector.recipe import load_recipe, recipe_hash
    from inspector.synthetic.demo_product import write_demo_recipe

    committed = Path(__file__).resolve().parents[2] / "recipes" / "demo-label.yaml"
    fresh = write_demo_recipe(tmp_path)
    assert fresh.read_text() == committed.read_text()
    np.testing.assert_array_equal(
        cv2.imread(str(tmp_path / "demo-label-reference.png")),
        cv2.imread(str(committed.parent / "demo-label-reference.png")),
    )
    assert recipe_hash(load_recipe(committed)) == recipe_hash(load_recipe(fresh))
