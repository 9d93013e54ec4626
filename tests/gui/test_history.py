"""The History tab's detail pane: pictures are read off the GUI thread."""

from __future__ import annotations

import pytest

from inspector.gui.widgets.history import HistoryWorkspace
from inspector.services.inspection_loop import run_inspection
from inspector.sources.files import FileSource
from inspector.store.database import open_store
from tests.unit.test_store_and_loop import line  # noqa: F401  (fixture)


@pytest.fixture
def history(qtbot, line):  # noqa: F811
    pipeline, folder, tmp = line
    store = open_store(str(tmp / "r.db"))
    run_inspection(pipeline, store, FileSource([folder]))
    workspace = HistoryWorkspace(lambda: store)
    qtbot.addWidget(workspace)
    workspace.refresh()
    yield workspace
    workspace.shutdown()


def _rows(history, verdict: str) -> list[int]:
    return [r for r in range(history.table.rowCount()) if history.table.item(r, 3).text() == verdict]


def test_a_selected_inspection_shows_its_image_and_defects(history, qtbot):
    fail = _rows(history, "FAIL")[0]
    history.table.selectRow(fail)  # already selected by refresh (the newest reject): shown once
    qtbot.waitUntil(lambda: "defect(s)" in history.detail.text(), timeout=10_000)
    assert history.view.image_size is not None and history.false_alarm.isEnabled()
    assert history.detail.text().startswith(f"#{history.table.item(fail, 0).text()} FAIL - p")
    # While another row's picture is read, the last one is not left up to be reviewed.
    history.table.selectRow(_rows(history, "FAIL")[1])
    assert history.view.image_size is None and not history.false_alarm.isEnabled()
    qtbot.waitUntil(lambda: history.false_alarm.isEnabled(), timeout=10_000)
    # Rows selected one after the other: the pane ends on the last one.
    passes = _rows(history, "PASS")
    for row in passes:
        history.table.selectRow(row)
    last = history.table.item(passes[-1], 0).text()
    qtbot.waitUntil(lambda: history.detail.text().startswith(f"#{last} PASS - p"), timeout=10_000)
    qtbot.waitUntil(lambda: history._loader is None, timeout=10_000)
    assert history.detail.text().startswith(f"#{last} PASS - p") and history.detail.text().endswith(", 0 defect(s)")


def test_an_image_that_is_gone_falls_back_to_its_overlay_or_says_so(history, qtbot, line):  # noqa: F811
    _, folder, _ = line
    for path in folder.glob("p*.png"):
        path.unlink()
    fail, passed = _rows(history, "FAIL")[0], _rows(history, "PASS")[0]
    history.table.selectRow(passed)
    qtbot.waitUntil(lambda: "no picture of it is stored" in history.detail.text(), timeout=10_000)
    assert history.view.image_size is None
    history.table.selectRow(fail)
    qtbot.waitUntil(lambda: "the overlay saved with it" in history.detail.text(), timeout=10_000)
    assert history.view.image_size is not None


def test_a_review_is_stored_off_the_gui_thread(history, qtbot):
    fail = _rows(history, "FAIL")[0]
    history.table.selectRow(fail)
    qtbot.waitUntil(history.confirm.isEnabled, timeout=10_000)
    assert history.review("confirmed") is not None
    assert not history.confirm.isEnabled()  # one review at a time
    qtbot.waitUntil(lambda: history.table.item(fail, 5).text() == "confirmed", timeout=10_000)
    qtbot.waitUntil(lambda: not history._reviewing, timeout=10_000)  # its worker waited for and deleted
    assert history.confirm.isEnabled()


def test_worker_failures_name_the_file_or_the_locked_database():
    from sqlalchemy.exc import OperationalError

    from inspector.gui.workers import _describe
    from inspector.store.database import database_problem

    assert _describe(IsADirectoryError(21, "Is a directory", "/reports/x.html")) == "/reports/x.html: Is a directory"
    locked = OperationalError("INSERT INTO reviews ...", {}, Exception("database is locked"))
    said = database_problem(locked)  # what the store's errors say (Store.transaction, the writer)
    assert "locked by another program" in said and "INSERT" not in said


def test_closing_while_a_report_is_exported_finishes_the_report(history, line):  # noqa: F811
    _, _, tmp = line
    assert history.export(tmp / "closing.pdf", "pdf") is not None
    history.shutdown()  # as closing the window does, at once
    assert (tmp / "closing.pdf").read_bytes().startswith(b"%PDF")


def test_the_review_buttons_follow_the_reject_on_show_while_a_review_is_stored(history, qtbot):
    first, second = _rows(history, "FAIL")[:2]
    history.table.selectRow(first)
    qtbot.waitUntil(history.confirm.isEnabled, timeout=10_000)
    history.review("confirmed")
    history.table.selectRow(second)  # the next reject, while the first review is stored
    qtbot.waitUntil(lambda: history.table.item(first, 5).text() == "confirmed", timeout=10_000)
    qtbot.waitUntil(lambda: not history._reviewing, timeout=10_000)
    qtbot.waitUntil(history.confirm.isEnabled, timeout=10_000)  # the second reject's, once its picture is up
    assert history._on_show.inspection_id == int(history.table.item(second, 0).text())
