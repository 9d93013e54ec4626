"""Operate's strip of recent rejects, newest first, in one group per run, each group
headed by its run and time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from inspector.engine.types import InspectionResult
from inspector.gui.widgets.image_view import qimage_from_bgr

RECENT_REJECTS = 12
_KEY = Qt.ItemDataRole.UserRole  # a reject's key; None on a group's header
_HEADER_BRUSH = QBrush(QColor("#d5d8dc"))


class RejectsStrip(QListWidget):
    """Signals: chosen(image, result, caption) when a reject is clicked."""

    chosen = Signal(object, object, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(120, 90))
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setFixedHeight(130)
        self.setToolTip("Rejects of the recent runs, newest first; click one to see it")
        self._rejects: dict[int, tuple[np.ndarray, InspectionResult, str]] = {}
        self._next_key = 0
        self._header: QListWidgetItem | None = None  # the running run's group, once it has a reject
        self._started: datetime | None = None
        self.itemClicked.connect(self._clicked)

    def start_run(self) -> None:
        """Rejects from now on form a new group (made with its first reject)."""
        self._header = None
        self._started = datetime.now().astimezone()

    def end_run(self, run_id: int) -> None:
        """The group's header names the run, now that its number is known."""
        if self._header is not None and self._started is not None:
            ended = datetime.now().astimezone()
            self._header.setText(f"Run {run_id}\n{self._started:%H:%M:%S}\nto {ended:%H:%M:%S}")
            self._header.setToolTip(f"Run {run_id}, {self._started:%Y-%m-%d %H:%M:%S} to {ended:%H:%M:%S}")
        self._header = None

    def add(self, name: str, image: np.ndarray, result: InspectionResult) -> None:
        if self._header is None:
            started = self._started or datetime.now().astimezone()
            self._header = QListWidgetItem(f"This run\nsince\n{started:%H:%M:%S}")
            self._header.setData(_KEY, None)
            self._header.setFlags(Qt.ItemFlag.ItemIsEnabled)  # not selectable
            self._header.setBackground(_HEADER_BRUSH)
            self._header.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            self._header.setSizeHint(QSize(90, 110))
            self.insertItem(0, self._header)
        thumb = cv2.resize(image, (120, max(1, round(image.shape[0] * 120 / image.shape[1]))))
        at = datetime.now().astimezone()
        item = QListWidgetItem(QIcon(QPixmap.fromImage(qimage_from_bgr(thumb))), Path(name).name)
        key = self._next_key
        self._next_key += 1
        item.setData(_KEY, key)
        item.setToolTip(f"{name}\n{at:%H:%M:%S}, {len(result.findings)} defect(s)")
        self._rejects[key] = (image, result, f"{Path(name).name} ({at:%H:%M:%S}, from the rejects strip)")
        self.insertItem(self.row(self._header) + 1, item)
        self._trim()

    def _trim(self) -> None:
        """Keep the newest RECENT_REJECTS rejects, and a header only above rejects."""
        while len(self._rejects) > RECENT_REJECTS:
            for row in range(self.count() - 1, -1, -1):
                key = self.item(row).data(_KEY)
                if key is not None:
                    self.takeItem(row)
                    del self._rejects[key]
                    break
        while self.count() and self.item(self.count() - 1).data(_KEY) is None:
            header = self.takeItem(self.count() - 1)
            if header is self._header:
                self._header = None

    def reject_count(self) -> int:
        return len(self._rejects)

    def group_headers(self) -> list[str]:
        """The groups' headings, newest first."""
        return [self.item(r).text() for r in range(self.count()) if self.item(r).data(_KEY) is None]

    def _clicked(self, item: QListWidgetItem) -> None:
        key = item.data(_KEY)
        if key is not None and key in self._rejects:
            self.chosen.emit(*self._rejects[key])
