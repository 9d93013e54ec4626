"""Overlay pictures for the image views, drawn with numpy and OpenCV (no Qt here).

Prompt markers are not drawn here: the image view draws them as items of a constant
size on screen (``widgets/image_view.py``)."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from inspector.engine.overlay import CANDIDATE, DEFECT, FEATURE, IGNORED, NORMAL, PALETTE, PART

__all__ = ["CANDIDATE", "DEFECT", "FEATURE", "IGNORED", "NORMAL", "PALETTE", "PART"]


def blank(size: tuple[int, int]) -> np.ndarray:
    """A transparent BGRA canvas for an image of (width, height)."""
    w, h = size
    return np.zeros((h, w, 4), np.uint8)


def tint(canvas: np.ndarray, mask: np.ndarray, color, *, alpha: int = 90, outline: int = 2) -> None:
    """Fill ``mask`` (same size as the canvas) with a translucent colour and outline it."""
    if not mask.any():
        return
    canvas[mask] = (*color, alpha)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(canvas, contours, -1, (*color, 255), outline, lineType=cv2.LINE_AA)


def outlines(canvas: np.ndarray, polygons: Iterable[np.ndarray], color, *, labels: Iterable[str] = ()) -> None:
    labels = list(labels)
    thickness = max(2, round(max(canvas.shape[:2]) / 500))
    for k, polygon in enumerate(polygons):
        pts = np.round(np.asarray(polygon)).astype(np.int32).reshape(-1, 1, 2)
        if len(pts) >= 2:
            cv2.polylines(canvas, [pts], True, (*color, 255), thickness, lineType=cv2.LINE_AA)
        if k < len(labels) and len(pts):
            x, y = pts[:, 0, 0].min(), pts[:, 0, 1].min()
            cv2.putText(
                canvas,
                labels[k],
                (int(x), max(12, int(y) - 5)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45 * thickness / 2,
                (*color, 255),
                max(1, thickness // 2),
                cv2.LINE_AA,
            )


def region_in_image(mask: np.ndarray, segmentation) -> np.ndarray:
    """A mask on ``segmentation``'s low-resolution grid at image size, where the grid
    lies: all of the image, or the window it was placed at (``Segmentation.placed``).
    Each image pixel takes the grid cell its centre falls in (nearest: no invented detail)."""
    width, height = segmentation.image_size
    ox, oy = segmentation.origin
    grid_h, grid_w = mask.shape
    cols = np.floor((np.arange(width) + 0.5 - ox) * segmentation.scale).astype(np.int64)
    rows = np.floor((np.arange(height) + 0.5 - oy) * segmentation.scale).astype(np.int64)
    in_cols, in_rows = (cols >= 0) & (cols < grid_w), (rows >= 0) & (rows < grid_h)
    out = np.zeros((height, width), bool)
    out[np.ix_(in_rows, in_cols)] = mask[np.ix_(rows[in_rows], cols[in_cols])]
    return out


def heat(canvas: np.ndarray, anomaly) -> None:
    """An anomaly map (``engine.types.AnomalyMap``) over the canvas: transparent where a
    place is as usual as a good part's most unusual one (the map's floor), warming to red
    at the threshold and above."""
    h, w = canvas.shape[:2]
    values = anomaly.in_image((w, h))
    low, high = min(anomaly.floor, anomaly.threshold), anomaly.threshold
    scaled = np.clip((values - low) / max(high - low, 1e-6), 0.0, 1.0)
    colours = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_JET)
    shown = values > low
    canvas[shown, :3] = colours[shown]
    canvas[shown, 3] = (60 + 100 * scaled[shown]).astype(np.uint8)
