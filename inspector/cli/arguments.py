"""Command-line values shared by several commands, checked when they are parsed."""

from __future__ import annotations

import argparse


def input_size(text: str) -> int:
    """A network input size, as a recipe's model.imgsz: whole pixels from 32 to 4096."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 32 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of pixels from 32 to 4096")
    return value


def station_name(text: str) -> str:
    """A station's name: printable, as long as the results database stores it."""
    from inspector.store.models import STATION_NAME_LENGTH

    if not text.strip() or len(text) > STATION_NAME_LENGTH or not text.isprintable():
        raise argparse.ArgumentTypeError(f"a station name is 1 to {STATION_NAME_LENGTH} printable characters")
    return text
