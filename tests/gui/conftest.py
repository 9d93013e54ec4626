"""GUI tests: every test's garbage is collected on the GUI thread."""

from __future__ import annotations

import gc

import pytest
from PySide6.QtCore import QSettings


@pytest.fixture(autouse=True)
def _garbage_collected_on_the_gui_thread():
    """Windows and widgets of a finished test are collected here, after pytest-qt has
    closed them, on the thread that made them. Left for later, a collection set off by a
    worker thread (loading a model allocates a lot) would destroy Qt objects off their
    thread, which can crash the process. The application itself freezes what it loads
    at start-up out of collections and keeps its one window."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def _unsaved_recipes_are_discarded(monkeypatch):
    """No test stops at a modal question about unsaved recipe edits (offscreen, nobody
    would answer it); the tests of that question give their own answers."""
    from inspector.gui.widgets.recipes import RecipesWorkspace

    monkeypatch.setattr(RecipesWorkspace, "ask_unsaved", lambda self: "discard")


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window on a database and settings of the test's own."""
    from inspector.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(db_url=str(tmp_path / "results.db"), settings=settings)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
