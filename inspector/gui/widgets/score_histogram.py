"""Anomaly scores as a histogram with the threshold as a line that can be dragged.

The taught images' leave-one-out scores are grey; tested images are green (good),
red (defective) or blue (not labelled). Dragging the line says where the threshold would
go; releasing it offers that threshold to the recipe.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

TAUGHT, GOOD, DEFECTIVE, UNLABELLED = "taught", "good", "defective", "unlabelled"
_COLOURS = {
    TAUGHT: QColor(150, 150, 150),
    GOOD: QColor(60, 170, 80),
    DEFECTIVE: QColor(210, 60, 60),
    UNLABELLED: QColor(70, 130, 200),
}
_BINS = 30
_MARGIN = 8
_GRAB = 6  # pixels either side of the line where a press takes it


class ScoreHistogram(QWidget):
    """Scores by kind, and a threshold that follows the mouse."""

    threshold_moved = Signal(float)  # while dragging
    threshold_chosen = Signal(float)  # on release

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        self._scores: dict[str, list[float]] = {kind: [] for kind in _COLOURS}
        self.threshold: float | None = None
        self._dragging = False
        self._held: tuple[float, float] | None = None  # the scale, kept while the line is dragged

    def set_scores(self, kind: str, scores) -> None:
        self._scores[kind] = [float(s) for s in scores]
        self.update()

    def set_threshold(self, threshold: float | None) -> None:
        self.threshold = threshold
        self.update()

    # -- geometry --------------------------------------------------------------------------

    def _range(self) -> tuple[float, float] | None:
        if self._held is not None:
            return self._held
        values = [s for scores in self._scores.values() for s in scores]
        if self.threshold is not None:
            values.append(self.threshold)
        if not values:
            return None
        low, high = min(values), max(values)
        pad = 0.05 * (high - low) or 1.0
        return low - pad, high + pad

    def _x_of(self, score: float, span: tuple[float, float]) -> float:
        low, high = span
        return _MARGIN + (score - low) / (high - low) * (self.width() - 2 * _MARGIN)

    def _score_at(self, x: float, span: tuple[float, float]) -> float:
        low, high = span
        return low + (x - _MARGIN) / max(1.0, self.width() - 2 * _MARGIN) * (high - low)

    # -- drawing ---------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        span = self._range()
        if span is None:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no scores yet: teach the recipe")
            return
        edges = np.linspace(span[0], span[1], _BINS + 1)
        counts = {kind: np.histogram(scores, edges)[0] for kind, scores in self._scores.items() if scores}
        tallest = max((c.max() for c in counts.values()), default=1) or 1
        height = self.height() - 2 * _MARGIN
        bottom = self.height() - _MARGIN
        for kind, count in counts.items():
            colour = QColor(_COLOURS[kind])
            colour.setAlpha(150)
            for k, n in enumerate(count):
                if n:
                    x1, x2 = self._x_of(edges[k], span), self._x_of(edges[k + 1], span)
                    bar = n / tallest * height
                    painter.fillRect(QRectF(x1 + 1, bottom - bar, max(1.0, x2 - x1 - 2), bar), colour)
        if self.threshold is not None:
            x = self._x_of(self.threshold, span)
            painter.setPen(QPen(QColor(0, 0, 0), 2))
            painter.drawLine(QPointF(x, _MARGIN), QPointF(x, bottom))
            painter.drawText(QPointF(x + 4, _MARGIN + 12), f"{self.threshold:.4g}")
        painter.end()

    # -- dragging --------------------------------------------------------------------------

    def _near_line(self, x: float) -> bool:
        span = self._range()
        return span is not None and self.threshold is not None and abs(x - self._x_of(self.threshold, span)) <= _GRAB

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.threshold is not None:
            self._held = self._range()
            self._dragging = True
            self._move_to(event.position().x())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        near = self._dragging or self._near_line(event.position().x())
        self.setCursor(Qt.CursorShape.SizeHorCursor if near else Qt.CursorShape.ArrowCursor)
        if self._dragging:
            self._move_to(event.position().x())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._dragging and event.button() == Qt.MouseButton.LeftButton:
            self._dragging, self._held = False, None
            self.update()
            self.threshold_chosen.emit(self.threshold)

    def _move_to(self, x: float) -> None:
        span = self._range()
        if span is None:
            return
        self.threshold = max(0.0, self._score_at(x, span))
        self.update()
        self.threshold_moved.emit(self.threshold)
