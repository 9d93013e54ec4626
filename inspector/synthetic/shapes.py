"""Pixel-exact shape rasterisation shared by the product and defect renderers.

Every shape is drawn once into a boolean mask and the image is painted through that
same mask, so the ground truth matches the pixels exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

# cv2 draws with sub-pixel precision when coordinates are fixed-point with this shift.
_SHIFT = 4
_SCALE = 1 << _SHIFT


def polygon_mask(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """Rasterise one closed polygon ((K, 2) float x, y) into an (H, W) bool mask."""
    mask = np.zeros(shape, np.uint8)
    points = np.round(np.asarray(polygon, np.float64) * _SCALE).astype(np.int32)
    cv2.fillPoly(mask, [points], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask.astype(bool)


def polyline_mask(shape: tuple[int, int], points: np.ndarray, thickness: int) -> np.ndarray:
    """Rasterise an open polyline of the given stroke width into a bool mask."""
    mask = np.zeros(shape, np.uint8)
    pts = np.round(np.asarray(points, np.float64) * _SCALE).astype(np.int32)
    cv2.polylines(mask, [pts], False, 1, thickness=int(thickness), lineType=cv2.LINE_8, shift=_SHIFT)
    return mask.astype(bool)


def ellipse_polygon(rx: float, ry: float, *, vertices: int = 96) -> np.ndarray:
    """Ellipse outline centred on the origin, as a (vertices, 2) polygon."""
    t = np.linspace(0.0, 2.0 * np.pi, vertices, endpoint=False)
    return np.stack([rx * np.cos(t), ry * np.sin(t)], axis=1)


def rounded_rect_polygon(width: float, height: float, radius: float) -> np.ndarray:
    """Rectangle with rounded corners centred on the origin."""
    radius = min(radius, width / 2, height / 2)
    corners = [
        (width / 2 - radius, height / 2 - radius, 0.0),
        (-width / 2 + radius, height / 2 - radius, 0.5 * np.pi),
        (-width / 2 + radius, -height / 2 + radius, np.pi),
        (width / 2 - radius, -height / 2 + radius, 1.5 * np.pi),
    ]
    points = []
    for cx, cy, start in corners:
        t = np.linspace(start, start + 0.5 * np.pi, 8)
        points.append(np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1))
    return np.concatenate(points)


def blob_polygon(rng: np.random.Generator, radius: float, *, roughness: float = 0.3) -> np.ndarray:
    """Irregular closed blob (stains, splashes) of roughly the given radius."""
    vertices = 24
    t = np.linspace(0.0, 2.0 * np.pi, vertices, endpoint=False)
    # A few low harmonics give an organic outline without self-intersections.
    r = np.ones(vertices)
    for harmonic in (2, 3, 5):
        r += roughness / harmonic * rng.uniform(-1, 1) * np.cos(harmonic * t + rng.uniform(0, 2 * np.pi))
    r = radius * np.clip(r, 0.45, 1.6)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def place(polygon: np.ndarray, *, center: tuple[float, float], angle_deg: float) -> np.ndarray:
    """Rotate a local polygon by ``angle_deg`` and move its origin to ``center``."""
    a = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return polygon @ rotation.T + np.asarray(center, np.float64)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], *, cells: int = 6) -> np.ndarray:
    """Low-frequency noise in [-1, 1] (uneven lighting, dirty conveyors)."""
    small = rng.uniform(-1.0, 1.0, size=(cells, cells)).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC).clip(-1, 1)
