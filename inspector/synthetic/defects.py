"""Defects painted onto a rendered part: stains, chips, scratches, holes, missing print.

Sizes are in pixels of a 640 px image: the smallest defects are about 12 px across,
the size at which a line camera still has to catch them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from inspector.synthetic.products import RenderedPart
from inspector.synthetic.shapes import blob_polygon, place, polygon_mask, polyline_mask

DefectKind = Literal["stain", "chip", "scratch", "hole", "missing_print"]
DEFECT_KINDS: tuple[DefectKind, ...] = ("stain", "chip", "scratch", "hole", "missing_print")
# Missing print leaves nothing to outline: it is found by comparison with the reference
# part, so it is ground truth for the demo but never a segment to train on.
VISIBLE_DEFECT_KINDS: tuple[DefectKind, ...] = ("stain", "chip", "scratch", "hole")


@dataclass(frozen=True)
class PaintedDefect:
    kind: DefectKind
    mask: np.ndarray  # (H, W) bool


def _interior(body: np.ndarray, margin: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    return cv2.erode(body.astype(np.uint8), kernel).astype(bool)


def _random_pixel(rng: np.random.Generator, region: np.ndarray) -> tuple[float, float] | None:
    ys, xs = np.nonzero(region)
    if len(xs) == 0:
        return None
    i = int(rng.integers(len(xs)))
    return float(xs[i]), float(ys[i])


def _tone(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    """A colour that stands out from the pixels it replaces (darker on light parts)."""
    mean = pixels.reshape(-1, 3).mean(axis=0) if pixels.size else np.full(3, 128.0)
    if mean.mean() > 100:
        color = mean * rng.uniform(0.25, 0.55) + rng.uniform(-20, 20, size=3)
    else:
        color = mean + rng.uniform(90, 150) + rng.uniform(-20, 20, size=3)
    return np.clip(color, 0, 255)


def _paint(canvas: np.ndarray, mask: np.ndarray, color: np.ndarray, rng: np.random.Generator) -> None:
    texture = rng.normal(0, 8, size=(int(mask.sum()), 1))
    canvas[mask] = np.clip(color[None, :] + texture, 0, 255).astype(np.uint8)


def _stain(canvas, part, rng, size) -> np.ndarray | None:
    where = _random_pixel(rng, _interior(part.body, int(size / 2) + 2))
    if where is None:
        return None
    mask = polygon_mask(part.body.shape, place(blob_polygon(rng, size / 2), center=where, angle_deg=0)) & part.body
    _paint(canvas, mask, _tone(rng, canvas[mask]), rng)
    return mask


def _hole(canvas, part, rng, size) -> np.ndarray | None:
    where = _random_pixel(rng, _interior(part.body, int(size / 2) + 3))
    if where is None:
        return None
    r = size / 2
    outline = place(
        np.stack([r * np.cos(t := np.linspace(0, 2 * np.pi, 40, endpoint=False)), r * np.sin(t)], 1),
        center=where,
        angle_deg=0,
    )
    mask = polygon_mask(part.body.shape, outline)
    _paint(canvas, mask, np.full(3, rng.uniform(5, 40)), rng)
    return mask


def _chip(canvas, part, rng, size) -> np.ndarray | None:
    # A bite out of the edge that exposes the raw material under the surface finish.
    edge = part.body & ~_interior(part.body, 1)
    where = _random_pixel(rng, edge)
    if where is None:
        return None
    mask = (
        polygon_mask(part.body.shape, place(blob_polygon(rng, size / 2, roughness=0.5), center=where, angle_deg=0))
        & part.body
    )
    if mask.sum() < 0.25 * size * size:
        return None
    _paint(canvas, mask, _tone(rng, canvas[mask]), rng)
    return mask


def _scratch(canvas, part, rng, size) -> np.ndarray | None:
    start = _random_pixel(rng, _interior(part.body, 6))
    if start is None:
        return None
    length = size * rng.uniform(1.5, 3.0)
    heading = rng.uniform(0, 2 * np.pi)
    points = [start]
    for _ in range(int(rng.integers(1, 4))):
        heading += rng.uniform(-0.6, 0.6)  # cracks wander, scratches barely
        step = length / 3
        points.append((points[-1][0] + step * np.cos(heading), points[-1][1] + step * np.sin(heading)))
    mask = polyline_mask(part.body.shape, np.array(points), thickness=int(rng.integers(3, 6)))
    mask &= _interior(part.body, 2)
    if mask.sum() < 3 * size:
        return None
    _paint(canvas, mask, _tone(rng, canvas[mask]), rng)
    return mask


def _missing_print(canvas, part, rng, size) -> np.ndarray | None:
    if not part.prints:
        return None
    mask = part.prints[int(rng.integers(len(part.prints)))]
    canvas[mask] = part.bare[mask]
    return mask


_PAINTERS = {"stain": _stain, "hole": _hole, "chip": _chip, "scratch": _scratch, "missing_print": _missing_print}


def paint_defect(
    canvas: np.ndarray,
    part: RenderedPart,
    kind: DefectKind,
    *,
    rng: np.random.Generator,
    size: float | None = None,
) -> PaintedDefect | None:
    """Paint one defect of ``kind`` on ``part``; None when the part has no room for it."""
    size = float(size if size is not None else rng.uniform(12, 40))
    for _ in range(5):  # a spot can be unlucky (a chip mostly off the part): try another
        mask = _PAINTERS[kind](canvas, part, rng, size)
        if mask is not None and mask.any():
            return PaintedDefect(kind, mask)
    return None
