"""Small pictures of stored images for reports; a file that is gone gives None, not an error."""

from __future__ import annotations

import cv2
import numpy as np

from inspector.engine.image import read_image
from inspector.errors import InspectorError


def thumbnail(*paths: str | None, width: int) -> np.ndarray | None:
    """The first of ``paths`` that can still be read, scaled to ``width`` (BGR)."""
    for path in paths:
        if not path:
            continue
        try:
            image = read_image(path)
        except InspectorError:
            continue
        h, w = image.shape[:2]
        return cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return None
