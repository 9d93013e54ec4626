"""Where Inspector keeps its files, with ``INSPECTOR_*`` environment overrides."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Root of Inspector's own files (databases, images, downloaded models)."""
    override = os.environ.get("INSPECTOR_DATA_DIR")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "inspector"


def model_dir() -> Path:
    """The user's model folder: FastSAM weights are looked for (and downloaded) here."""
    override = os.environ.get("INSPECTOR_MODEL_DIR")
    return Path(override).expanduser() if override else data_dir() / "models"


DEFAULT_MAX_IMAGE_PIXELS = 100_000_000  # a 12-megapixel camera's frames eight times over


def max_image_pixels() -> int:
    """The most pixels an image may have to be decoded (``INSPECTOR_MAX_IMAGE_PIXELS``): a
    few hundred kilobytes of PNG can claim gigabytes of pixels."""
    try:
        return max(1, int(os.environ.get("INSPECTOR_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS)))
    except ValueError:
        return DEFAULT_MAX_IMAGE_PIXELS
