"""Domain errors. The CLI and GUI show these to the user; anything else is a bug."""

from __future__ import annotations


class InspectorError(Exception):
    """Base of every error that names a bad input and what to do about it."""


class RecipeError(InspectorError):
    """A recipe file is missing, malformed or inconsistent."""


class SourceError(InspectorError):
    """An image, folder, video or camera cannot be read."""


class EngineError(InspectorError):
    """The model cannot be found, verified, loaded or run."""


class StoreError(InspectorError):
    """The results database cannot be opened or written."""
