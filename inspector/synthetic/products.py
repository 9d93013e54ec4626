"""Product designs (tablets, washers, labels, boards) and how they are painted.

A :class:`ProductDesign` is what stays the same from one part to the next on a line
(kind, size, colours, print layout); :func:`render_part` puts one instance of it on a
canvas at a given pose. The demo product is one fixed design; training scenes draw a
new design for every part so the segmenter learns shapes, not one product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from inspector.synthetic.shapes import (
    ellipse_polygon,
    place,
    polygon_mask,
    rounded_rect_polygon,
)

ProductKind = Literal["tablet", "washer", "label", "board"]
PRODUCT_KINDS: tuple[ProductKind, ...] = ("tablet", "washer", "label", "board")


@dataclass(frozen=True)
class PrintElement:
    """A printed or mounted feature of a good part (logo, colour band, component)."""

    polygon: np.ndarray  # (K, 2) in part-local pixels
    color: tuple[int, int, int]  # BGR


@dataclass(frozen=True)
class ProductDesign:
    kind: ProductKind
    outline: np.ndarray  # (K, 2) part-local polygon of the body
    hole: np.ndarray | None  # inner polygon for rings, None otherwise
    color: tuple[int, int, int]
    shading: float  # strength of the radial shading of the body
    prints: tuple[PrintElement, ...]

    @property
    def radius(self) -> float:
        """Distance from the centre to the farthest outline point."""
        return float(np.linalg.norm(self.outline, axis=1).max())


@dataclass(frozen=True)
class RenderedPart:
    """Masks of one painted part, in canvas pixels."""

    body: np.ndarray  # (H, W) bool, the whole part (ring hole excluded)
    prints: tuple[np.ndarray, ...]  # one (H, W) bool mask per print element
    center: tuple[float, float]
    angle: float
    bare: np.ndarray  # the canvas before print was applied (what a missing print shows)


def _color(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, size=3))


def _contrasting(rng: np.random.Generator, base: tuple[int, int, int]) -> tuple[int, int, int]:
    """A print colour clearly darker or lighter than ``base``."""
    if np.mean(base) > 110:
        return _color(rng, 10, 80)
    return _color(rng, 170, 250)


def _tablet(rng: np.random.Generator, scale: float) -> ProductDesign:
    rx = rng.uniform(45, 100) * scale
    ry = rx * rng.uniform(0.75, 1.0)
    color = _color(rng, 170, 250) if rng.random() < 0.7 else _color(rng, 90, 200)
    prints = []
    if rng.random() < 0.6:
        r = rx * rng.uniform(0.18, 0.3)
        prints.append(PrintElement(ellipse_polygon(r, r, vertices=48), _contrasting(rng, color)))
    return ProductDesign("tablet", ellipse_polygon(rx, ry), None, color, rng.uniform(0.1, 0.3), tuple(prints))


def _washer(rng: np.random.Generator, scale: float) -> ProductDesign:
    r = rng.uniform(55, 115) * scale
    inner = r * rng.uniform(0.35, 0.55)
    gray = int(rng.integers(110, 215))
    tint = rng.integers(-15, 16, size=3)
    color = tuple(int(np.clip(gray + t, 0, 255)) for t in tint)
    return ProductDesign(
        "washer", ellipse_polygon(r, r), ellipse_polygon(inner, inner, vertices=64), color, rng.uniform(0.15, 0.4), ()
    )


def _label(rng: np.random.Generator, scale: float) -> ProductDesign:
    w = rng.uniform(140, 250) * scale
    h = w * rng.uniform(0.5, 0.8)
    color = _color(rng, 150, 250)
    prints = []
    # A colour band across the top, a round logo, a triangular mark: each its own segment.
    band_h = h * rng.uniform(0.15, 0.25)
    band = rounded_rect_polygon(w * 0.8, band_h, 2) + [0, -h / 2 + band_h]
    prints.append(PrintElement(band, _contrasting(rng, color)))
    if rng.random() < 0.8:
        r = h * rng.uniform(0.12, 0.2)
        logo = ellipse_polygon(r, r, vertices=48) + [-w * 0.22, h * 0.15]
        prints.append(PrintElement(logo, _contrasting(rng, color)))
    if rng.random() < 0.6:
        s = h * rng.uniform(0.15, 0.25)
        triangle = np.array([[0, -s], [s, s * 0.7], [-s, s * 0.7]]) + [w * 0.22, h * 0.15]
        prints.append(PrintElement(triangle, _contrasting(rng, color)))
    return ProductDesign("label", rounded_rect_polygon(w, h, rng.uniform(0, 12)), None, color, 0.08, tuple(prints))


def _board(rng: np.random.Generator, scale: float) -> ProductDesign:
    w = rng.uniform(160, 260) * scale
    h = w * rng.uniform(0.55, 0.85)
    color = (int(rng.integers(20, 70)), int(rng.integers(90, 160)), int(rng.integers(20, 60)))
    prints = []
    for _ in range(int(rng.integers(2, 5))):
        cw, ch = rng.uniform(0.15, 0.3) * w, rng.uniform(0.15, 0.3) * h
        cx, cy = rng.uniform(-0.3, 0.3) * w, rng.uniform(-0.3, 0.3) * h
        chip = rounded_rect_polygon(cw, ch, 1) + [cx, cy]
        # Components must not overlap each other, or one would hide the other's outline.
        if all(np.abs(np.mean(p.polygon, 0) - [cx, cy]).max() > 0.3 * w for p in prints):
            prints.append(PrintElement(chip, _color(rng, 15, 45)))
    return ProductDesign("board", rounded_rect_polygon(w, h, 3), None, color, 0.05, tuple(prints))


_DESIGNERS = {"tablet": _tablet, "washer": _washer, "label": _label, "board": _board}


def random_design(rng: np.random.Generator, kind: ProductKind | None = None, *, scale: float = 1.0) -> ProductDesign:
    """Draw a new product design; ``scale`` multiplies its size (1.0 suits 640 px images)."""
    if kind is None:
        kind = PRODUCT_KINDS[int(rng.integers(len(PRODUCT_KINDS)))]
    return _DESIGNERS[kind](rng, scale)


def render_part(
    canvas: np.ndarray,
    design: ProductDesign,
    *,
    center: tuple[float, float],
    angle: float,
    rng: np.random.Generator,
) -> RenderedPart:
    """Paint one part onto ``canvas`` (BGR uint8, modified in place) and return its masks."""
    shape = canvas.shape[:2]
    body = polygon_mask(shape, place(design.outline, center=center, angle_deg=angle))
    if design.hole is not None:
        body &= ~polygon_mask(shape, place(design.hole, center=center, angle_deg=angle))

    # Soft drop shadow first, so the part sits on the surface rather than floating.
    offset = rng.uniform(2, 6, size=2)
    shadow = polygon_mask(shape, place(design.outline, center=tuple(np.add(center, offset)), angle_deg=angle))
    canvas[shadow & ~body] = (canvas[shadow & ~body] * 0.7).astype(np.uint8)

    ys, xs = np.nonzero(body)
    dist = np.hypot(xs - center[0], ys - center[1]) / max(design.radius, 1.0)
    light = np.cos(np.deg2rad(rng.uniform(0, 360)))
    shade = 1.0 - design.shading * dist * (0.6 + 0.4 * light)
    canvas[ys, xs] = np.clip(np.asarray(design.color) * shade[:, None], 0, 255).astype(np.uint8)

    bare = canvas.copy()
    prints = []
    for element in design.prints:
        mask = polygon_mask(shape, place(element.polygon, center=center, angle_deg=angle)) & body
        canvas[mask] = element.color
        prints.append(mask)
    return RenderedPart(body=body, prints=tuple(prints), center=center, angle=angle, bare=bare)
