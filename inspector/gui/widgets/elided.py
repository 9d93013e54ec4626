"""A label that never widens its window: what does not fit is elided, the whole text is
its tooltip."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QStyle, QStyleOption


class ElidedLabel(QLabel):
    """Shows each line of its text cut with "…" to the width it is given.

    A plain QLabel asks for the width of its longest line (or longest word, wrapped): a
    long message or file name would stretch the window past a small screen. ``text()``
    gives back the whole text; its first ``max_lines`` lines are shown.
    """

    def __init__(
        self, text: str = "", parent=None, *, max_lines: int = 1, elide: Qt.TextElideMode = Qt.TextElideMode.ElideRight
    ) -> None:
        super().__init__(parent)
        self._full = ""
        self._max_lines = max_lines
        self._elide = elide
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text if text else "")
        super().setText(text)
        self.updateGeometry()
        self.update()

    def text(self) -> str:
        return self._full

    def _lines(self) -> list[str]:
        return self._full.splitlines()[: self._max_lines] or [""]

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        margins = self.contentsMargins()
        width = max(metrics.horizontalAdvance(line) for line in self._lines())
        extra = margins.left() + margins.right()
        return QSize(
            min(width, 400) + extra, metrics.lineSpacing() * self._max_lines + margins.top() + margins.bottom()
        )

    def minimumSizeHint(self) -> QSize:
        hint = self.sizeHint()
        return QSize(self.fontMetrics().horizontalAdvance("M…"), hint.height())

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        option = QStyleOption()
        option.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_Widget, option, painter, self)  # a styled background
        painter.setPen(self.palette().color(self.foregroundRole()))
        rect = self.contentsRect()
        metrics = self.fontMetrics()
        y = rect.top()
        align = (self.alignment() & Qt.AlignmentFlag.AlignHorizontal_Mask) | Qt.AlignmentFlag.AlignTop
        for line in self._lines():
            shown = metrics.elidedText(line, self._elide, rect.width())
            painter.drawText(rect.left(), y, rect.width(), metrics.lineSpacing(), align, shown)
            y += metrics.lineSpacing()
        painter.end()
