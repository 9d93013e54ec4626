"""The results database: chosen in the File menu, checked before use, remembered, named."""

from __future__ import annotations

import sqlite3

from PySide6.QtCore import QSettings, Qt

from inspector.gui.main_window import MainWindow
from tests.gui.dialogs import answer_file_dialog


def _window(qtbot, tmp_path) -> MainWindow:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)  # no --db: the one chosen before, else the default
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def _choose_database_file(qtbot, window, typed: str) -> list:
    """File > Results database…, and ``typed`` into the file dialog."""
    seen: list = []
    bar = window.menuBar()
    file_menu = bar.actions()[0].menu()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.actionGeometry(bar.actions()[0]).center())
    qtbot.waitUntil(file_menu.isVisible, timeout=30_000)
    answer_file_dialog(qtbot, window, seen, typed)
    where = file_menu.actionGeometry(window.database_file_action).center()
    qtbot.mouseClick(file_menu, Qt.MouseButton.LeftButton, pos=where)
    return seen


def test_the_database_is_chosen_in_the_file_menu_remembered_and_named(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    window = _window(qtbot, tmp_path)
    assert "inspector.db - Inspector" in window.windowTitle()
    assert window.database_label.text() == f"Database: {tmp_path / 'data' / 'inspector.db'}"

    other = tmp_path / "line3" / "results.db"
    other.parent.mkdir()
    seen = _choose_database_file(qtbot, window, str(other))
    assert seen == [(str(tmp_path / "data"), "inspector.db")]  # offered: the one in use
    qtbot.waitUntil(lambda: "results.db - Inspector" in window.windowTitle(), timeout=60_000)
    assert window.database_label.text() == f"Database: {other}" and other.is_file()

    # Another program's SQLite file is refused, not given Inspector's tables.
    foreign = tmp_path / "addresses.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
    window.activateWindow()  # as the window manager does once a dialog closes
    qtbot.waitUntil(window.isActiveWindow, timeout=30_000)
    _choose_database_file(qtbot, window, str(foreign))
    qtbot.waitUntil(lambda: window.status.text().startswith("Still on "), timeout=60_000)
    assert "not an Inspector results database" in window.status.text()
    assert "results.db - Inspector" in window.windowTitle()
    with sqlite3.connect(foreign) as conn:
        assert [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["people"]
    window.close()

    again = _window(qtbot, tmp_path)  # remembered
    assert again.database_label.text() == f"Database: {other}"
    again.close()
