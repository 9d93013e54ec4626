"""Messages: what the application said this session, each with its time, errors marked.

The status bar shows only the latest message, cut to its first line; here every one is
kept whole (up to ``KEEP``), newest at the bottom, so a message that flashed by during a
run can still be read.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

KEEP = 2000  # the oldest go first beyond this
_ERROR_COLOUR = QColor("#c0392b")


class MessagesPanel(QWidget):
    """Signals:
    unread_errors_changed(count): errors added since the panel was last looked at.
    """

    unread_errors_changed = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Time", "Kind", "Message"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.clear_button = QPushButton("Clear", toolTip="Forget the messages shown here")
        self.clear_button.clicked.connect(self.clear)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.unread_errors = 0

    def add(self, text: str, is_error: bool, *, when: datetime | None = None) -> None:
        """Keep one message; it is scrolled to."""
        when = when or datetime.now()
        if self.table.rowCount() >= KEEP:
            self.table.removeRow(0)
        row = self.table.rowCount()
        self.table.insertRow(row)
        cells = (when.strftime("%H:%M:%S"), "Error" if is_error else "Info", text)
        for column, value in enumerate(cells):
            item = QTableWidgetItem(value)
            item.setToolTip(f"{when:%Y-%m-%d %H:%M:%S}\n{text}")
            if is_error:
                item.setForeground(QBrush(_ERROR_COLOUR))
            item.setTextAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            self.table.setItem(row, column, item)
        if "\n" in text:
            self.table.resizeRowToContents(row)
        self.table.scrollToBottom()
        if is_error and not self.isVisible():
            self.unread_errors += 1
            self.unread_errors_changed.emit(self.unread_errors)

    def messages(self) -> list[tuple[str, str, str]]:
        """(time, kind, text) of each message kept, oldest first."""
        return [
            tuple(self.table.item(row, column).text() for column in range(3)) for row in range(self.table.rowCount())
        ]

    def clear(self) -> None:
        self.table.setRowCount(0)
        self.mark_read()

    def mark_read(self) -> None:
        if self.unread_errors:
            self.unread_errors = 0
            self.unread_errors_changed.emit(0)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.mark_read()
