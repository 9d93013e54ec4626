"""Operate with a stand-in segmenter: what is refused before a run, and what the pane shows."""

from __future__ import annotations

import sqlite3

import pytest
from PySide6.QtCore import Qt

from inspector.gui.widgets.operate import OperateWorkspace
from inspector.store.database import open_store
from tests.unit.test_store_and_loop import line  # noqa: F401  (fixture)


@pytest.fixture
def operate(qtbot, line, monkeypatch):  # noqa: F811
    """Operate on the ``line`` fixture's recipe, its network the stand-in."""
    pipeline, _, tmp = line
    monkeypatch.setattr("inspector.engine.pipeline.open_pipeline", lambda recipe, **_: pipeline)
    workspace = OperateWorkspace(lambda: open_store(str(tmp / "r.db")))
    qtbot.addWidget(workspace)
    workspace.resize(1200, 800)
    workspace.show()
    qtbot.waitExposed(workspace)
    qtbot.keyClicks(workspace.recipe_edit, str(pipeline.recipe.source))
    yield workspace
    workspace.shutdown()


def _said(workspace, qtbot, action) -> list[tuple[str, bool]]:
    messages = []
    workspace.message.connect(lambda text, error: messages.append((text, error)))
    action()
    return messages


def test_a_mistyped_source_is_refused_before_a_run_is_stored(operate, qtbot, line):  # noqa: F811
    _, folder, tmp = line
    typo = f"{folder}s"
    qtbot.keyClicks(operate.source_edit, typo)
    said = _said(operate, qtbot, lambda: qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton))
    assert not operate.running and operate.start_button.text() == "Start"
    assert said == [(f"{typo}: no such file or folder", True)]
    assert not (tmp / "r.db").exists()  # no run, no ERROR row


def test_an_error_never_shows_the_last_part_under_its_verdict(operate, qtbot, line):  # noqa: F811
    _, folder, tmp = line
    lot = tmp / "lot"
    lot.mkdir()
    (lot / "a.png").write_bytes((folder / "p0.png").read_bytes())  # a good part, inspected first
    (lot / "b.png").write_text("not an image")  # then one that cannot be read
    qtbot.keyClicks(operate.source_edit, str(lot))
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
    assert operate.counters["Inspected"].text() == "2" and operate.verdict.text() == "ERROR"
    assert operate.view.image_size is None  # not a.png's picture under b.png's verdict
    assert operate.current.text().startswith("b.png")
    with sqlite3.connect(tmp / "r.db") as conn:
        assert sorted(conn.execute("SELECT verdict FROM inspections")) == [("ERROR",), ("PASS",)]

    # The next run starts from an empty pane, not the last run's verdict and picture.
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    assert operate.verdict.text() == "READY" and operate.view.image_size is None
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)


def test_f5_starts_and_stops_a_run_from_anywhere_in_the_window(window, qtbot, line, monkeypatch):  # noqa: F811
    pipeline, folder, tmp = line
    monkeypatch.setattr("inspector.engine.pipeline.open_pipeline", lambda recipe, **_: pipeline)
    operate, history = window.operate, window.history
    qtbot.keyClicks(operate.recipe_edit, str(pipeline.recipe.source))
    incoming = tmp / "incoming"
    incoming.mkdir()
    qtbot.keyClicks(operate.source_edit, f"watch:{incoming}")  # a hot folder: runs until stopped
    window.tabs.setCurrentWidget(history)
    history.table.setFocus()
    qtbot.keyClick(history.table, Qt.Key.Key_F5)  # from the History tab, the focus on its table
    assert operate.running and window.tabs.currentWidget() is operate
    (incoming / "p1.png").write_bytes((folder / "p1.png").read_bytes())
    qtbot.waitUntil(lambda: operate.counters["Inspected"].text() == "1", timeout=60_000)
    qtbot.keyClick(operate.source_edit, Qt.Key.Key_F5)  # from a text field: F5 is not typed into it
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
    assert operate.source_edit.text() == f"watch:{incoming}" and "stopped" in window.status.text()
