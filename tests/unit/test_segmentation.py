"""Low-resolution masks and the full-resolution masks built from them on demand."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inspector.engine.prompts import select_segments
from inspector.engine.types import Segmentation
from tests.helpers import segmentation_of


def square_segmentation() -> Segmentation:
    """A 400x200 image seen at a quarter scale: a big block and a small one inside it."""
    probs = np.zeros((2, 50, 100), np.float32)
    probs[0, 10:40, 10:60] = 1.0
    probs[1, 20:30, 20:30] = 1.0
    return Segmentation(
        image_size=(400, 200),
        scale=0.25,
        boxes=np.array([[40, 40, 240, 160], [80, 80, 120, 120]], np.float32),
        scores=np.array([0.9, 0.8], np.float32),
        masks=probs > 0.5,
        probabilities=probs.astype(np.float16),
    )


def test_full_mask_is_at_image_resolution_and_inside_the_box():
    seg = square_segmentation()
    mask = seg.full_mask(1)
    assert mask.shape == (200, 400)
    ys, xs = np.nonzero(mask)
    assert xs.min() >= 78 and xs.max() <= 121 and ys.min() >= 78 and ys.max() <= 121
    assert abs(int(mask.sum()) - 40 * 40) < 200


def test_image_prompts_select_on_the_low_resolution_masks():
    seg = square_segmentation()
    inner = select_segments(seg, points=[[100, 100]], labels=[1], mode="instances")
    assert inner.indices.tolist() == [0, 1]
    merged = select_segments(seg, points=[[60, 60], [100, 100]], labels=[1, 0], mode="instances")
    assert merged.indices.tolist() == []
    box = select_segments(seg, boxes=[[40, 40, 240, 160]])
    assert box.indices.tolist() == [0]
    region = seg.full_region(box)
    assert region.shape == (200, 400) and abs(int(region.sum()) - 200 * 120) < 1500


def test_prompts_outside_the_image_are_errors_not_clipped():
    seg = square_segmentation()
    with pytest.raises(ValueError, match=r"point \(400, 10\)"):
        select_segments(seg, points=[[400, 10]])
    with pytest.raises(ValueError, match="box"):
        select_segments(seg, boxes=[[0, 0, 500, 100]])


def test_a_segmented_window_is_placed_back_in_image_pixels():
    blob = np.zeros((480, 640), bool)
    blob[200:231, 300:341] = True
    x0, y0 = 250, 150
    window = segmentation_of([blob[y0:330, x0:450]], (200, 180)).placed((x0, y0), (640, 480))
    assert window.image_size == (640, 480)
    np.testing.assert_allclose(window.boxes[0], [300, 200, 341, 231])
    full = window.full_mask(0)
    assert (full & blob).sum() / (full | blob).sum() > 0.9
    ((px, py),) = window.lowres_points(np.array([[320.0, 215.0]])).astype(int)
    assert window.masks[0, py, px]  # a point given in image pixels lands on the blob
    ((bx1, by1, bx2, by2),) = window.lowres_boxes(np.array([[300, 200, 341, 231]]))
    inside = window.masks[0, int(by1) : int(by2), int(bx1) : int(bx2)]
    assert inside.sum() == window.masks[0].sum() and inside.mean() > 0.6  # the box frames the blob


def test_ranked_segments_put_the_most_confident_first():
    blobs = [np.zeros((40, 40), bool) for _ in range(3)]
    for k, m in enumerate(blobs):
        m[5 + 10 * k : 12 + 10 * k, 5:30] = True
    seg = replace(segmentation_of(blobs, (40, 40)), scores=np.float32([0.2, 0.9, 0.5]))
    ranked = seg.ranked()
    np.testing.assert_allclose(ranked.scores, [0.9, 0.5, 0.2])
    assert ranked.masks[0].sum() == seg.masks[1].sum() and (ranked.masks[0] == seg.masks[1]).all()
    assert len(ranked.head(2)) == 2 and ranked.head(5) is ranked


def test_non_max_suppression_keeps_what_torchvision_keeps_in_the_same_order():
    import torch
    from torchvision.ops import nms

    from inspector.engine.segmenter import non_max_suppression

    generator = torch.Generator().manual_seed(0)
    sets = []
    for _ in range(20):
        corner = torch.rand(300, 2, generator=generator) * 500
        sets.append(torch.cat([corner, corner + torch.rand(300, 2, generator=generator) * 120 + 2], dim=1))
    # 6,000 candidates on 30 objects, as a network proposes each object many times over,
    # the best-scored object's first: the best few hundred keep fewer than max_det, and
    # more must be looked at.
    objects = torch.rand(30, 1, 2, generator=generator) * 500
    corner = (objects + torch.rand(30, 200, 2, generator=generator) * 2).reshape(-1, 2)
    sets.append(torch.cat([corner, corner + 60 + torch.rand(6000, 2, generator=generator) * 2], dim=1))
    by_object = (1 - torch.arange(30)[:, None] / 30 - torch.rand(30, 200, generator=generator) / 100).reshape(-1)
    for boxes in sets:
        scores = by_object if len(boxes) == len(by_object) else torch.rand(len(boxes), generator=generator) + 1e-3
        for iou in (0.5, 0.7):
            expected = nms(boxes, scores, iou).numpy()
            np.testing.assert_array_equal(non_max_suppression(boxes, scores, iou), expected)
            for max_det in (2, 20, 200):
                np.testing.assert_array_equal(non_max_suppression(boxes, scores, iou, max_det), expected[:max_det])
    assert len(non_max_suppression(torch.zeros((0, 4)), torch.zeros(0), 0.7, 10)) == 0
