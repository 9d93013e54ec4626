"""The image's pixels against the golden part's: what visibly changed.

Two uses, both with the image registered to the reference and compared as the network
saw it (lighting that differs smoothly from the reference's is taken out with a gain
averaged over the part):

- ``defects.changed_fraction``: the network sometimes cuts a good surface into a piece
  the reference does not have (half of the label, a band split in two), which then
  matches no reference segment and passes every segment rule. A real defect changes the
  pixels under it; such a piece does not. Compared on the grid the masks live on (a few
  thousand pixels, one map for every candidate).
- ``defects.differences``: a defect the network does not segment at all (a small dark
  hole on dark print) still changes the pixels: blobs of change inside the part that no
  reported defect explains are reported too.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# A pixel has changed when it differs from the reference by this share of the
# reference's brightness (in any colour channel) ...
CHANGE = 0.3
# ... measured above this many gray levels, so that sensor noise on dark print is no change.
DARK_FLOOR = 16.0


def pixels_on_grid(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (H, W, 3) averaged down onto a (width, height) mask grid, float32."""
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def change_map(image: np.ndarray, reference: np.ndarray, part: np.ndarray) -> np.ndarray:
    """How much each pixel differs from the reference, as a share of its brightness.

    ``image`` and ``reference`` are (h, w, 3) float32, the image registered to the
    reference; ``part`` is (h, w) bool, where the lighting gain is measured. The largest
    change over the colour channels, above a floor of ``DARK_FLOOR`` gray levels.
    """
    expected = reference * _lighting_gain(image, reference, part)
    relative = np.abs(image - expected) / (expected + DARK_FLOOR)
    return np.maximum(np.maximum(relative[..., 0], relative[..., 1]), relative[..., 2])


def changed_fractions(image: np.ndarray, reference: np.ndarray, masks: np.ndarray, region: np.ndarray) -> np.ndarray:
    """For each mask, the share of its pixels that differ visibly from the reference.

    Args:
        image, reference: (h, w, 3) float32 on the masks' grid (see :func:`pixels_on_grid`),
            the image registered to the reference.
        masks: (N, h, w) bool candidate masks.
        region: (h, w) bool where the lighting gain is measured (the part).
    """
    if len(masks) == 0:
        return np.zeros(0, np.float32)
    changed = change_map(image, reference, region) > CHANGE
    areas = masks.reshape(len(masks), -1).sum(axis=1)
    hits = (masks & changed).reshape(len(masks), -1).sum(axis=1)
    return (hits / np.maximum(areas, 1)).astype(np.float32)


# Differences the network did not segment (``defects.differences``): blobs of changed
# pixels inside the part. Thinner than this (compared-image pixels) is an edge that the
# registration left a pixel or two apart, or noise, not a defect.
OPENING = 5
# Compared-image pixels along the part's outline where differences do not count: the
# outline is where registration and segmentation are least exact.
EDGE_MARGIN = 3


@dataclass(frozen=True)
class Difference:
    """A blob of visible change: a bool ``mask`` whose top-left pixel is ``origin`` (x, y)
    in the compared image, and its mean change (0.3 = 30 % of the reference's brightness)."""

    origin: tuple[int, int]
    mask: np.ndarray
    change: float


def _lighting_gain(image: np.ndarray, reference: np.ndarray, part: np.ndarray) -> np.ndarray:
    """How much brighter the image is lit than the reference, pixel by pixel (smooth).

    Averaged over the part only (normalised convolution), at a quarter of the size: the
    light varies over a fifth of the image, not from pixel to pixel.
    """
    h, w = part.shape
    small = (max(1, w // 4), max(1, h // 4))
    weight = cv2.resize(part.astype(np.float32), small, interpolation=cv2.INTER_AREA)[..., None]
    sigma = max(small) / 12.0

    def smooth(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(cv2.resize(x, small, interpolation=cv2.INTER_AREA) * weight, (0, 0), sigma)

    gain = (smooth(image) + 1.0) / (smooth(reference) + 1.0)
    return cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)


def differences(image: np.ndarray, reference: np.ndarray, part: np.ndarray) -> list[Difference]:
    """Blobs of visible change inside the part.

    Args:
        image, reference: (h, w, 3) uint8, the image registered to the reference and the
            reference, at the same size.
        part: (h, w) bool where the part is.
    """
    bx, by, bw, bh = cv2.boundingRect(part.astype(np.uint8))
    if bw == 0 or bh == 0:
        return []
    # Only the part's box is compared, with a margin off the part so that its outline
    # is eroded away (see EDGE_MARGIN).
    h, w = part.shape
    x0, y0 = max(0, bx - EDGE_MARGIN), max(0, by - EDGE_MARGIN)
    x1, y1 = min(w, bx + bw + EDGE_MARGIN), min(h, by + bh + EDGE_MARGIN)
    part = part[y0:y1, x0:x1]
    change = change_map(image[y0:y1, x0:x1].astype(np.float32), reference[y0:y1, x0:x1].astype(np.float32), part)
    kernel = np.ones((2 * EDGE_MARGIN + 1,) * 2, np.uint8)
    inside = cv2.erode(part.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    changed = ((change > CHANGE) & inside).astype(np.uint8)
    changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, np.ones((OPENING, OPENING), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
    found = []
    for k in range(1, count):
        x, y, dx, dy = (int(v) for v in stats[k, :4])
        mask = labels[y : y + dy, x : x + dx] == k
        found.append(Difference((x0 + x, y0 + y), mask, float(change[y : y + dy, x : x + dx][mask].mean())))
    return found
