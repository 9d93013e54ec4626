"""Checking a recipe's YAML values: every problem collected with the dotted path of the
field it concerns (``defects.min_area: must be >= 0, got -5``)."""

from __future__ import annotations

import math
from typing import Any

# The longest names a results database stores (its columns' lengths: store/models.py).
PRODUCT_NAME_LENGTH = 200
LABEL_LENGTH = 100


def finite(value: int | float) -> bool:
    """Whether a YAML number is usable: not .nan or .inf, and an integer a float can hold."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def finite_number(value: Any) -> bool:
    """A YAML int or float (not a bool, which YAML also reads as a number) that is finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and finite(value)


def as_yaml_number(value) -> str:
    """A hint for text that reads as a number to people but not to YAML 1.1, which wants
    a point and a signed exponent (2e4 is text; 2.0e+4 is a number), or no quotes."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    try:
        if not math.isfinite(float(text)):
            return ""
    except ValueError:
        return ""
    mantissa, e, exponent = text.lower().partition("e")
    if e:
        mantissa += "" if "." in mantissa else ".0"
        exponent = exponent if exponent[:1] in "+-" else f"+{exponent}"
        text = f"{mantissa}e{exponent}"
    return f" (YAML reads it as text; write {text})"


def text_problem(value: str, max_length: int | None) -> str | None:
    """What makes a name unstorable in every results database (PostgreSQL refuses NUL
    characters and text longer than its column), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if max_length is not None and len(value) > max_length:
        return f"at most {max_length} characters, got {len(value)}"
    return None


class Checker:
    """Collects validation problems with the dotted path of the field they concern."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def section(self, data: Any, where: str, allowed: set[str]) -> dict:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail(where, f"must be a mapping, got {type(data).__name__}")
            return {}
        for key in data:
            if key not in allowed:
                self.fail(
                    f"{where}.{key}" if where else str(key), f"unknown key (allowed: {', '.join(sorted(allowed))})"
                )
        return data

    def number(self, data: dict, key: str, where: str, default, *, low=None, high=None, integer=False):
        value = data.get(key, default)
        path = f"{where}.{key}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"must be a number, got {value!r}" + as_yaml_number(value))
            return default
        if not finite(value):  # YAML's .nan and .inf, or an integer no float can hold
            self.fail(path, f"must be a finite number, got {value!r:.40}")
            return default
        if integer and int(value) != value:
            self.fail(path, f"must be a whole number, got {value!r}")
            return default
        if low is not None and value < low:
            self.fail(path, f"must be >= {low}, got {value!r}")
        if high is not None and value > high:
            self.fail(path, f"must be <= {high}, got {value!r}")
        return int(value) if integer else float(value)

    def text(self, data: dict, key: str, where: str, default=None, *, required=False, choices=None, max_length=None):
        path = f"{where}.{key}" if where else key
        if key not in data or data[key] is None:
            if required:
                self.fail(path, "missing (required)")
            return default
        value = data[key]
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(path, f"must be a non-empty string, got {value!r}")
            return default
        if choices and value not in choices:
            self.fail(path, f"must be one of {', '.join(choices)}, got {value!r}")
            return default
        problem = text_problem(value, max_length)
        if problem:
            self.fail(path, problem)
            return default
        return value

    def flag(self, data: dict, key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"{where}.{key}", f"must be true or false, got {value!r}")
            return default
        return value

    def tuples(self, data: dict, key: str, where: str, sizes: tuple[int, ...]) -> tuple:
        value = data.get(key) or []
        path = f"{where}.{key}"
        if not isinstance(value, list):
            self.fail(path, f"must be a list, got {type(value).__name__}")
            return ()
        out = []
        for i, item in enumerate(value):
            ok = isinstance(item, list) and len(item) in sizes
            ok = ok and all(finite_number(v) for v in item)
            if not ok:
                shape = " or ".join(str(s) for s in sizes)
                self.fail(f"{path}[{i}]", f"must be a list of {shape} finite numbers, got {item!r}")
                continue
            out.append(tuple(float(v) for v in item))
        return tuple(out)
