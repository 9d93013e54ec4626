"""Write synthetic scenes as an ultralytics YOLO-seg data set (one class: "object").

Training samples are crops at native scale around each part, so every sample shows a
whole part and its small defects at the size the camera sees them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from inspector.synthetic.scene import Scene

MIN_INSTANCE_AREA = 12  # pixels; slivers cut off by a crop teach nothing


def mask_to_polygon(mask: np.ndarray) -> np.ndarray | None:
    """One polygon ((K, 2) float pixels) that fills ``mask``, holes and pieces included.

    YOLO labels hold a single polygon per instance, so inner contours (the hole of a
    washer) and separate pieces are spliced in through zero-width bridges at their
    nearest points, as COCO converters do.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    contours = [c.reshape(-1, 2).astype(np.float64) for c in contours if len(c) >= 3]
    if not contours:
        return None
    contours.sort(key=len, reverse=True)
    polygon = contours[0]
    for other in contours[1:]:
        d = np.linalg.norm(polygon[:, None, :] - other[None, :, :], axis=2)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        polygon = np.concatenate([polygon[: i + 1], other[j:], other[: j + 1], polygon[i:]])
    return polygon


def _crop_boxes(scene: Scene, rng: np.random.Generator, crop: int) -> Iterator[tuple[int, int]]:
    """Top-left corners of crops: one around each part, one around a random defect."""
    h, w = scene.image.shape[:2]
    anchors = [i.mask for i in scene.parts]
    visible_defects = [d.mask for d in scene.defects if d.visible]
    if visible_defects:
        anchors.append(visible_defects[int(rng.integers(len(visible_defects)))])
    for mask in anchors:
        ys, xs = np.nonzero(mask)
        x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
        # Any corner that keeps the anchor inside the crop, or its centre when it is larger.
        lo_x, hi_x = (x1 - crop + 1, x0) if x1 - x0 < crop else ((x0 + x1) // 2 - crop // 2,) * 2
        lo_y, hi_y = (y1 - crop + 1, y0) if y1 - y0 < crop else ((y0 + y1) // 2 - crop // 2,) * 2
        cx = int(np.clip(rng.integers(lo_x, hi_x + 1), 0, max(0, w - crop)))
        cy = int(np.clip(rng.integers(lo_y, hi_y + 1), 0, max(0, h - crop)))
        yield cx, cy


def yolo_label_lines(masks: list[np.ndarray]) -> list[str]:
    """Label lines ("0 x1 y1 x2 y2 ...", normalised) for the visible masks of one image."""
    lines = []
    for mask in masks:
        if mask.sum() < MIN_INSTANCE_AREA:
            continue
        polygon = mask_to_polygon(mask)
        if polygon is None:
            continue
        h, w = mask.shape
        normalised = (polygon / [w, h]).clip(0, 1).reshape(-1)
        lines.append("0 " + " ".join(f"{v:.5f}" for v in normalised))
    return lines


def write_crops(scene: Scene, out_dir: Path, stem: str, rng: np.random.Generator, *, crop: int = 320) -> int:
    """Write the training crops of one scene into ``out_dir/images`` and ``out_dir/labels``."""
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    visible = [i.mask for i in scene.instances if i.visible]
    count = 0
    for k, (x, y) in enumerate(_crop_boxes(scene, rng, crop)):
        window = (slice(y, y + crop), slice(x, x + crop))
        name = f"{stem}_{k}"
        cv2.imwrite(str(out_dir / "images" / f"{name}.jpg"), scene.image[window], [cv2.IMWRITE_JPEG_QUALITY, 95])
        lines = yolo_label_lines([m[window] for m in visible])
        (out_dir / "labels" / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        count += 1
    return count


def write_full(scene: Scene, out_dir: Path, stem: str) -> None:
    """Write a whole scene (validation at inference scale)."""
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_dir / "images" / f"{stem}.png"), scene.image)
    lines = yolo_label_lines([i.mask for i in scene.instances if i.visible])
    (out_dir / "labels" / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
