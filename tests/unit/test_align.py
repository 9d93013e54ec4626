"""Registration of moved parts to the reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inspector.engine.align import AlignmentFailed, ReferenceAligner, transform_points
from inspector.synthetic.demo_product import demo_reference


def moved(image: np.ndarray, angle: float, shift: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The image turned about its centre and shifted; returns it and the image->moved matrix."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    matrix[:, 2] += shift
    out = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return out, np.vstack([matrix, [0, 0, 1]])


def part_region(scene) -> np.ndarray:
    ys, xs = np.nonzero(scene.parts[0].mask)
    region = np.zeros(scene.image.shape[:2], bool)
    region[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
    return region


@pytest.mark.parametrize(("angle", "shift"), [(0.0, (0, 0)), (5.0, (18, -12)), (-4.0, (-25, 20))])
def test_a_moved_part_is_registered_to_the_reference(angle, shift):
    reference = demo_reference()
    aligner = ReferenceAligner(reference.image, region=part_region(reference))
    image, to_moved = moved(reference.image, angle, shift)
    matrix = aligner.homography(image)
    corners = np.float32([[200, 170], [450, 170], [450, 320], [200, 320]])  # on the part
    back = transform_points(transform_points(corners, to_moved), matrix)
    assert np.abs(back - corners).max() < 2.5


def test_a_plain_part_without_corners_is_registered_by_intensity():
    rng = np.random.default_rng(0)
    reference = np.clip(rng.normal(110, 4, (240, 320, 3)), 0, 255).astype(np.uint8)
    cv2.ellipse(reference, (160, 120), (70, 45), 0, 0, 360, (200, 190, 180), -1, cv2.LINE_AA)
    cv2.ellipse(reference, (160, 120), (30, 15), 0, 0, 360, (90, 90, 160), -1, cv2.LINE_AA)
    region = np.zeros(reference.shape[:2], bool)
    region[70:170, 85:235] = True
    aligner = ReferenceAligner(reference, region=region, min_inliers=4)
    image, to_moved = moved(reference, 3.0, (9, -6))
    aligner.min_inliers = 10_000  # no feature match is ever enough: the intensity path must do it
    alignment = aligner.align(image)
    matrix = alignment.matrix
    assert alignment.fine  # the edges line up: its pixels can be compared with the reference's
    centre = np.float32([[160, 120], [220, 120]])
    assert np.abs(transform_points(transform_points(centre, to_moved), matrix) - centre).max() < 2.0


def test_unrelated_or_tiny_images_fail_with_a_reason():
    reference = demo_reference()
    aligner = ReferenceAligner(reference.image, region=part_region(reference))
    with pytest.raises(AlignmentFailed, match="too small"):
        aligner.homography(np.zeros((8, 8, 3), np.uint8))
    noise = np.random.default_rng(1).integers(0, 255, reference.image.shape, dtype=np.uint8)
    with pytest.raises(AlignmentFailed, match="alignment failed"):
        aligner.homography(noise)


def test_a_part_that_lost_its_prints_is_registered_by_its_outline():
    reference = demo_reference()
    aligner = ReferenceAligner(reference.image, region=part_region(reference))
    outline = reference.parts[0].mask
    image_part, to_moved = moved(outline.astype(np.uint8) * 255, -4.0, (22, -15))
    matrix = aligner.from_silhouettes(outline[::4, ::4], image_part[::4, ::4] > 127)  # any common grid
    corners = np.float32([[200, 170], [450, 170], [450, 320], [200, 320]])
    back = transform_points(transform_points(corners, to_moved), matrix)
    assert np.abs(back - corners).max() < 2.5
    round_part = np.zeros_like(outline)
    cv2.circle(round_part.view(np.uint8), (320, 240), 60, 1, -1)
    with pytest.raises(AlignmentFailed, match="outline"):
        aligner.from_silhouettes(outline, round_part)


def test_edges_that_line_up_overrule_features_misled_by_a_still_background(monkeypatch):
    reference = demo_reference()
    aligner = ReferenceAligner(reference.image, region=part_region(reference))
    image, to_moved = moved(reference.image, 3.0, (8, -6))  # corners move 15-25 px
    # Matches on a background that does not move vote for "the part did not move".
    monkeypatch.setattr(aligner, "_features", lambda gray, scale: np.eye(3))
    matrix = aligner.homography(image)
    corners = np.float32([[200, 170], [450, 170], [450, 320], [200, 320]])
    back = transform_points(transform_points(corners, to_moved), matrix)
    assert np.abs(back - corners).max() < 2.5
