"""The History tab: pictures read off the GUI thread, and reviews stored on the inspection
on show, under the reviewer's name, from the mouse or the keyboard."""

from __future__ import annotations

import sqlite3

import pytest
from PySide6.QtCore import Qt

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
    workspace.resize(1200, 800)
    workspace.show()
    qtbot.waitExposed(workspace)
    qtbot.keyClicks(workspace.review_panel.operator, "Ana")
    with qtbot.waitSignal(workspace.refreshed, timeout=60_000):
        workspace.refresh()
    yield workspace
    workspace.shutdown()


def _rows(history, verdict: str) -> list[int]:
    return [r for r in range(history.table.rowCount()) if history.table.item(r, 3).text() == verdict]


def _ident(history, row: int) -> int:
    return int(history.table.item(row, 0).text())


def _click_row(qtbot, history, row: int) -> None:
    table = history.table
    table.scrollToItem(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualItemRect(table.item(row, 1)).center())


def _on_show(history) -> int | None:
    """The inspection whose picture and caption are up, once they are."""
    return None if history._on_show is None else history._on_show.inspection_id


def _reviews(made) -> list[tuple]:
    """The stored reviews, oldest first, of the ``line`` fixture's database."""
    _, _, tmp = made
    sql = "SELECT inspection_id, defect_id, decision, operator, note FROM reviews ORDER BY id"
    with sqlite3.connect(tmp / "r.db") as conn:
        return conn.execute(sql).fetchall()


def test_a_selected_inspection_shows_its_image_and_defects(history, qtbot):
    fail = _rows(history, "FAIL")[0]
    history.table.selectRow(fail)  # already selected by refresh (the newest reject): shown once
    qtbot.waitUntil(lambda: "defect(s)" in history.detail.text(), timeout=60_000)
    assert history.view.image_size is not None and history.false_alarm.isEnabled()
    assert history.detail.text().startswith(f"#{history.table.item(fail, 0).text()} FAIL - p")
    # While another row's picture is read, the last one is not left up to be reviewed.
    history.table.selectRow(_rows(history, "FAIL")[1])
    assert history.view.image_size is None and not history.false_alarm.isEnabled()
    qtbot.waitUntil(lambda: history.false_alarm.isEnabled(), timeout=60_000)
    # Rows selected one after the other: the pane ends on the last one.
    passes = _rows(history, "PASS")
    for row in passes:
        history.table.selectRow(row)
    last = history.table.item(passes[-1], 0).text()
    qtbot.waitUntil(lambda: history.detail.text().startswith(f"#{last} PASS - p"), timeout=60_000)
    qtbot.waitUntil(lambda: history._loader is None, timeout=60_000)
    assert history.detail.text().startswith(f"#{last} PASS - p") and history.detail.text().endswith(", 0 defect(s)")


def test_an_image_that_is_gone_falls_back_to_its_overlay_or_says_so(history, qtbot, line):  # noqa: F811
    _, folder, _ = line
    for path in folder.glob("p*.png"):
        path.unlink()
    fail, passed = _rows(history, "FAIL")[0], _rows(history, "PASS")[0]
    history.table.selectRow(passed)
    qtbot.waitUntil(lambda: "no picture of it is stored" in history.detail.text(), timeout=60_000)
    assert history.view.image_size is None
    history.table.selectRow(fail)
    qtbot.waitUntil(lambda: "the overlay saved with it" in history.detail.text(), timeout=60_000)
    assert history.view.image_size is not None


def test_a_review_is_stored_off_the_gui_thread(history, qtbot):
    fail = _rows(history, "FAIL")[0]
    history.table.selectRow(fail)
    qtbot.waitUntil(history.confirm.isEnabled, timeout=60_000)
    assert history.review("confirmed") is not None
    assert not history.confirm.isEnabled()  # one review at a time
    qtbot.waitUntil(lambda: history.table.item(fail, 5).text() == "confirmed", timeout=60_000)
    qtbot.waitUntil(lambda: not history._reviewing, timeout=60_000)  # its worker waited for and deleted
    qtbot.waitUntil(history.confirm.isEnabled, timeout=60_000)  # the next reject, once its picture is up


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
    qtbot.waitUntil(history.confirm.isEnabled, timeout=60_000)
    history.review("confirmed")
    history.table.selectRow(second)  # the next reject, while the first review is stored
    qtbot.waitUntil(lambda: history.table.item(first, 5).text() == "confirmed", timeout=60_000)
    qtbot.waitUntil(lambda: not history._reviewing, timeout=60_000)
    qtbot.waitUntil(history.confirm.isEnabled, timeout=60_000)  # the second reject's, once its picture is up
    assert history._on_show.inspection_id == int(history.table.item(second, 0).text())


def test_after_a_refresh_under_another_filter_the_review_goes_to_the_inspection_on_show(history, qtbot, line):  # noqa: F811
    everything = [_ident(history, r) for r in range(history.table.rowCount())]
    fails = [_ident(history, r) for r in _rows(history, "FAIL")]
    oldest_fail = fails[-1]
    _click_row(qtbot, history, everything.index(oldest_fail))
    qtbot.waitUntil(lambda: _on_show(history) == oldest_fail and history.confirm.isEnabled(), timeout=60_000)
    assert history.detail.text().startswith(f"#{oldest_fail} FAIL")

    # Only the rejects: the row the selection had is another inspection's now.
    qtbot.keyClick(history.verdict, Qt.Key.Key_Down)  # (all), FAIL, PASS, ERROR
    assert history.verdict.currentText() == "FAIL"
    with qtbot.waitSignal(history.refreshed, timeout=60_000):
        qtbot.mouseClick(history.refresh_button, Qt.MouseButton.LeftButton)
    assert history.table.rowCount() == len(fails)
    qtbot.waitUntil(lambda: history.confirm.isEnabled(), timeout=60_000)
    selected = history._selected_id()
    assert selected == oldest_fail == _on_show(history)  # the same inspection, on its new row
    assert history.detail.text().startswith(f"#{oldest_fail} FAIL")

    qtbot.keyClicks(history.review_panel.note, "burr on the rim")
    qtbot.mouseClick(history.confirm, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _reviews(line) != [], timeout=60_000)
    assert _reviews(line) == [(oldest_fail, None, "confirmed", "Ana", "burr on the rim")]

    # A passed part selected, then only the rejects: the pane follows the selection there too.
    qtbot.keyClick(history.verdict, Qt.Key.Key_Down)
    assert history.verdict.currentText() == "PASS"
    with qtbot.waitSignal(history.refreshed, timeout=60_000):
        qtbot.mouseClick(history.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _on_show(history) == history._selected_id() is not None, timeout=60_000)
    assert not history.confirm.isEnabled()  # a passed part is not reviewed
    qtbot.keyClick(history.verdict, Qt.Key.Key_Up)
    assert history.verdict.currentText() == "FAIL"
    with qtbot.waitSignal(history.refreshed, timeout=60_000):
        qtbot.mouseClick(history.refresh_button, Qt.MouseButton.LeftButton)
    assert history.view.image_size is None or _on_show(history) == history._selected_id()
    qtbot.waitUntil(lambda: history.confirm.isEnabled(), timeout=60_000)
    assert _on_show(history) == history._selected_id() == fails[0]
    assert history.detail.text().startswith(f"#{fails[0]} FAIL")


def test_without_a_reviewer_name_nothing_is_stored(history, qtbot, line):  # noqa: F811
    qtbot.waitUntil(history.confirm.isEnabled, timeout=60_000)
    history.review_panel.operator.selectAll()
    qtbot.keyClick(history.review_panel.operator, Qt.Key.Key_Backspace)
    assert not history.confirm.isEnabled() and "name" in history.confirm.toolTip()
    history.table.setFocus()
    qtbot.keyClick(history.table, Qt.Key.Key_C)
    assert history.review("confirmed") is None and not history._reviewing
    assert _reviews(line) == []
    qtbot.keyClicks(history.review_panel.operator, "Ben")
    assert history.confirm.isEnabled()


def test_rejects_are_reviewed_from_the_keyboard_one_after_the_other(history, qtbot, line):  # noqa: F811
    fails = [_ident(history, r) for r in _rows(history, "FAIL")]
    qtbot.waitUntil(lambda: _on_show(history) == fails[0] and history.confirm.isEnabled(), timeout=60_000)
    history.table.setFocus()
    qtbot.keyClick(history.table, Qt.Key.Key_N)  # the next reject
    qtbot.waitUntil(lambda: _on_show(history) == fails[1], timeout=60_000)
    qtbot.keyClick(history.table, Qt.Key.Key_P)  # back to the first
    qtbot.waitUntil(lambda: _on_show(history) == fails[0] and history.confirm.isEnabled(), timeout=60_000)
    qtbot.keyClick(history.table, Qt.Key.Key_C)  # confirmed; the next reject comes up
    qtbot.waitUntil(lambda: _on_show(history) == fails[1] and history.confirm.isEnabled(), timeout=60_000)
    qtbot.keyClick(history.table, Qt.Key.Key_F)  # a false alarm; the next one
    qtbot.waitUntil(lambda: _on_show(history) == fails[2] and history.confirm.isEnabled(), timeout=60_000)
    assert [r[:4] for r in _reviews(line)] == [
        (fails[0], None, "confirmed", "Ana"),
        (fails[1], None, "false_alarm", "Ana"),
    ]
    reviewed = {_ident(history, r): history.table.item(r, 5).text() for r in _rows(history, "FAIL")}
    assert reviewed == {fails[0]: "confirmed", fails[1]: "false alarm", fails[2]: ""}
    # Letters typed in the note are the note's, and in the filters the filters': not decisions.
    qtbot.keyClicks(history.review_panel.note, "cf")
    assert history.review_panel.note.text() == "cf" and len(_reviews(line)) == 2
    for combo, letter in ((history.verdict, Qt.Key.Key_F), (history.product, Qt.Key.Key_C)):
        combo.setFocus()  # as a click or Tab into the filter gives it
        qtbot.waitUntil(combo.hasFocus, timeout=60_000)
        qtbot.keyClick(combo, letter)
    assert history.verdict.currentText() == "FAIL"  # the filter took the letter
    assert len(_reviews(line)) == 2 and not history._reviewing
    # The last reject reviewed: said, and the pane stays on it.
    said = []
    history.message.connect(lambda text, _: said.append(text))
    qtbot.mouseClick(history.view.viewport(), Qt.MouseButton.LeftButton)  # the keys work over the picture too
    qtbot.waitUntil(history.view.hasFocus, timeout=60_000)
    qtbot.keyClick(history.view, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: len(_reviews(line)) == 3 and not history._reviewing, timeout=60_000)
    assert _reviews(line)[-1] == (fails[2], None, "confirmed", "Ana", "cf")  # the note typed above
    assert said[-1].endswith("it was the last reject in this list") and _on_show(history) == fails[2]


def test_one_defect_of_a_reject_is_reviewed_on_its_own(history, qtbot, line):  # noqa: F811
    fails = [_ident(history, r) for r in _rows(history, "FAIL")]
    qtbot.waitUntil(lambda: _on_show(history) == fails[0] and history.confirm.isEnabled(), timeout=60_000)
    targets = history.review_panel.targets
    assert targets.count() == 1 + len(history._on_show.defect_ids) >= 2
    assert targets.item(0).text() == "Whole part" and targets.item(1).text().startswith("1: ")
    last = targets.count() - 1
    at = targets.visualItemRect(targets.item(last)).center()
    qtbot.mouseClick(targets.viewport(), Qt.MouseButton.LeftButton, pos=at)
    defect_id = history._on_show.defect_ids[-1]
    qtbot.keyClick(targets, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: _reviews(line) != [], timeout=60_000)
    assert _reviews(line) == [(fails[0], defect_id, "false_alarm", "Ana", "")]
    qtbot.waitUntil(lambda: _on_show(history) == fails[1], timeout=60_000)  # its last defect: the next reject
    row = _rows(history, "FAIL")[0]
    assert history.table.item(row, 5).text() == ""  # the part as a whole is not reviewed
    _click_row(qtbot, history, row)
    qtbot.waitUntil(lambda: _on_show(history) == fails[0], timeout=60_000)
    assert targets.item(last).text().endswith(" - false alarm") and targets.item(0).text() == "Whole part"


def test_history_shows_one_stations_inspections(history, qtbot, line):  # noqa: F811
    from inspector.services.inspection_loop import RunSettings

    pipeline, folder, _ = line
    store = history.store()
    run_inspection(pipeline, store, FileSource([folder]), RunSettings(station="Line 3", force=True))
    with qtbot.waitSignal(history.refreshed, timeout=60_000):
        qtbot.mouseClick(history.refresh_button, Qt.MouseButton.LeftButton)
    assert history.table.rowCount() == 12
    names = [history.station.itemText(k) for k in range(history.station.count())]
    assert names[0] == "(all)" and "Line 3" in names and len(names) == 3
    history.station.setFocus()
    qtbot.keyClicks(history.station, "Line")  # a list is chosen from by typing
    assert history.station.currentText() == "Line 3"
    with qtbot.waitSignal(history.refreshed, timeout=60_000):
        qtbot.mouseClick(history.refresh_button, Qt.MouseButton.LeftButton)
    assert history.table.rowCount() == 6
    assert "station Line 3" in history.current_filter().describe()


def test_a_database_slow_to_answer_never_freezes_the_window(qtbot, line):  # noqa: F811
    """As a server that does not answer yet: History is read on a worker thread; the
    window takes typing meanwhile, and shows the rows once they come."""
    import threading

    pipeline, folder, tmp = line
    store = open_store(str(tmp / "r.db"))
    run_inspection(pipeline, store, FileSource([folder]))
    asked, answer = threading.Event(), threading.Event()

    def slow_store():
        asked.set()
        answer.wait(120)
        return store

    workspace = HistoryWorkspace(slow_store)
    qtbot.addWidget(workspace)
    workspace.show()
    qtbot.waitExposed(workspace)
    qtbot.mouseClick(workspace.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(asked.is_set, timeout=60_000)
    qtbot.keyClicks(workspace.review_panel.operator, "Ana")  # the window answers while the database does not
    assert workspace.review_panel.reviewer() == "Ana" and workspace.busy() and workspace.table.rowCount() == 0
    with qtbot.waitSignal(workspace.refreshed, timeout=60_000):
        answer.set()
    assert workspace.table.rowCount() == 6
    workspace.shutdown()
