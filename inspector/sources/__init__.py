"""Where images come from. Every source yields :class:`Frame` objects."""

from inspector.sources.files import FileSource
from inspector.sources.frame import Frame, FrameSource

__all__ = ["FileSource", "Frame", "FrameSource"]
