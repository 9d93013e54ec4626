"""select_masks against literal re-implementations of the two reference semantics."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.engine.prompts import select_masks


def reference_merge(masks, points, labels):
    """Original FastSAM point_prompt, written as its loop: largest mask first, each point in order."""
    areas = [m.sum() for m in masks]
    order = sorted(range(len(masks)), key=lambda i: areas[i], reverse=True)
    region = np.zeros(masks.shape[1:], bool)
    for i in order:
        for (x, y), label in zip(points, labels, strict=True):
            if masks[i][y, x] and label == 1:
                region[masks[i]] = True
            if masks[i][y, x] and label == 0:
                region[masks[i]] = False
    return region


def reference_instances(masks, points, labels):
    """ultralytics FastSAMPredictor.prompt point branch, as plain loops."""
    keep = []
    all_background = all(label == 0 for label in labels)
    for i, m in enumerate(masks):
        fg = any(m[y, x] for (x, y), label in zip(points, labels, strict=True) if label == 1)
        bg = any(m[y, x] for (x, y), label in zip(points, labels, strict=True) if label == 0)
        if (fg or all_background) and not bg:
            keep.append(i)
    return keep


def reference_box(masks, box):
    x1, y1, x2, y2 = box
    best, best_iou = 0, -1.0
    for i, m in enumerate(masks):
        inside = m[y1:y2, x1:x2].sum()
        iou = inside / ((x2 - x1) * (y2 - y1) + m.sum() - inside)
        if iou > best_iou:
            best, best_iou = i, iou
    return best


def random_masks(rng, n, h, w):
    """Overlapping ellipses and rectangles of many sizes, like a segment-everything output."""
    yy, xx = np.mgrid[0:h, 0:w]
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(1, w / 2), rng.uniform(1, h / 2)
        if rng.random() < 0.5:
            masks[i] = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        else:
            masks[i] = (np.abs(xx - cx) <= rx) & (np.abs(yy - cy) <= ry)
    return masks


@pytest.mark.parametrize("seed", range(300))
def test_point_modes_match_the_reference_semantics(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(8, 40)), int(rng.integers(8, 40))
    masks = random_masks(rng, int(rng.integers(0, 12)), h, w)
    k = int(rng.integers(1, 6))
    points = np.stack([rng.integers(0, w, k), rng.integers(0, h, k)], axis=1)
    labels = rng.integers(0, 2, k)

    merged = select_masks(masks, points=points, labels=labels, mode="merge")
    np.testing.assert_array_equal(merged.mask, reference_merge(masks, points, labels))

    instances = select_masks(masks, points=points, labels=labels, mode="instances")
    expected = reference_instances(masks, points, labels)
    assert instances.indices.tolist() == expected
    union = np.zeros((h, w), bool)
    for i in expected:
        union |= masks[i]
    np.testing.assert_array_equal(instances.mask, union)


@pytest.mark.parametrize("seed", range(100))
def test_boxes_pick_the_best_iou_mask_and_combine_with_points(seed):
    rng = np.random.default_rng(1000 + seed)
    h, w = 30, 40
    masks = random_masks(rng, int(rng.integers(1, 10)), h, w)
    x1, y1 = int(rng.integers(0, w - 2)), int(rng.integers(0, h - 2))
    box = (x1, y1, int(rng.integers(x1 + 1, w + 1)), int(rng.integers(y1 + 1, h + 1)))
    point = (int(rng.integers(0, w)), int(rng.integers(0, h)))

    chosen = select_masks(masks, boxes=[box])
    assert chosen.indices.tolist() == [reference_box(masks, box)]
    np.testing.assert_array_equal(chosen.mask, masks[reference_box(masks, box)])

    both = select_masks(masks, boxes=[box], points=[point], labels=[1], mode="merge")
    expected = reference_merge(masks, [point], [1]) | masks[reference_box(masks, box)]
    np.testing.assert_array_equal(both.mask, expected)


def test_merge_subtracts_overlapping_background_segments():
    masks = np.zeros((2, 10, 10), bool)
    masks[0, :, :8] = True  # the part, larger
    masks[1, :, 6:] = True  # a neighbour overlapping its right edge
    result = select_masks(masks, points=[[2, 2], [9, 5]], labels=[1, 0], mode="merge")
    assert result.mask[:, :6].all()
    assert not result.mask[:, 6:].any()
    assert result.indices.tolist() == [0]


def test_merge_lets_the_last_point_inside_a_mask_decide():
    masks = np.zeros((1, 10, 10), bool)
    masks[0, 2:8, 2:8] = True
    kept = select_masks(masks, points=[[3, 3], [6, 6]], labels=[0, 1], mode="merge")
    dropped = select_masks(masks, points=[[3, 3], [6, 6]], labels=[1, 0], mode="merge")
    assert kept.mask.sum() == 36
    assert not dropped.mask.any()


def test_all_background_points_in_instances_mode_keep_untouched_masks():
    masks = np.zeros((3, 10, 10), bool)
    masks[0, :5] = True
    masks[1, 5:] = True
    masks[2, :, :2] = True
    result = select_masks(masks, points=[[8, 2]], labels=[0], mode="instances")
    assert result.indices.tolist() == [1, 2]


def test_no_masks_gives_an_empty_selection():
    result = select_masks(np.zeros((0, 20, 30), bool), points=[[3, 3]], boxes=[[0, 0, 5, 5]])
    assert result.mask.shape == (20, 30)
    assert not result.mask.any()
    assert result.indices.size == 0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"points": [[30, 4]]}, "point (30, 4)"),
        ({"points": [[-1, 4]]}, "point (-1, 4)"),
        ({"boxes": [[0, 0, 21, 5]]}, "box (0, 0, 21, 5)"),
        ({"boxes": [[5, 5, 5, 9]]}, "box (5, 5, 5, 9)"),
        ({"points": [[1, 1]], "labels": [1, 0]}, "labels"),
        ({"points": [[1, 1]], "labels": [2]}, "labels"),
        ({"points": [[1, 1]], "mode": "nearest"}, "nearest"),
    ],
)
def test_bad_prompts_raise_errors_that_name_them(kwargs, fragment):
    masks = np.ones((2, 10, 20), bool)
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        select_masks(masks, **kwargs)


def test_replaying_the_steps_rebuilds_the_region():
    rng = np.random.default_rng(7)
    masks = random_masks(rng, 8, 32, 32)
    result = select_masks(masks, points=[[5, 5], [20, 20], [10, 25]], labels=[1, 0, 1], boxes=[[0, 0, 16, 16]])
    np.testing.assert_array_equal(result.replay(masks.__getitem__, (32, 32)), result.mask)
