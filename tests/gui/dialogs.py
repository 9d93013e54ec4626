"""Answering the application's modal dialogs as a person does: once a dialog is up, read
it and click a button or type into it. Each waits on a timer that ends with its owner."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit, QMessageBox


def answer_question(qtbot, owner, button: QMessageBox.StandardButton, seen: list[str]) -> QTimer:
    """Once a question is up, note its text in ``seen`` and click ``button``."""

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            return  # not up (yet)
        waiting.stop()
        seen.append(box.text())
        qtbot.mouseClick(box.button(button), Qt.MouseButton.LeftButton)

    waiting = QTimer(owner, interval=20, timeout=answer)
    waiting.start()
    return waiting


def answer_file_dialog(qtbot, owner, seen: list, typed: str | None) -> QTimer:
    """Once a file dialog is up, note the folder and name it offers, then type ``typed``
    and press Enter (None: cancel it)."""

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            return
        waiting.stop()
        name = dialog.findChild(QLineEdit, "fileNameEdit")
        seen.append((dialog.directory().absolutePath(), name.text()))
        if typed is None:
            dialog.reject()
            return
        name.selectAll()
        qtbot.keyClicks(name, typed)
        qtbot.keyClick(name, Qt.Key.Key_Return)

    waiting = QTimer(owner, interval=20, timeout=answer)
    waiting.start()
    return waiting
