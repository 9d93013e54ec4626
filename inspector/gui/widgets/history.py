"""History: stored inspections by product, date and verdict; view, review, export."""

from __future__ import annotations

import threading
from datetime import datetime, time, timezone
from pathlib import Path

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inspector.engine.image import read_image
from inspector.errors import InspectorError
from inspector.gui import render
from inspector.gui.pdf import write_pdf
from inspector.gui.widgets.elided import ElidedLabel
from inspector.gui.widgets.image_view import ImageView, qimage_from_bgr
from inspector.gui.widgets.review_panel import REVIEW_NAMES, ReviewPanel
from inspector.report.query import (
    HISTORY_LIMIT,
    InspectionDetail,
    ReportFilter,
    history,
    inspection_detail,
    record_review,
    station_names,
)

_ALL = "(all)"
_REVIEW_COLUMN = 5


def _picture(store, ident: int) -> tuple[InspectionDetail, QImage | None, QImage | None, InspectorError | None]:
    """(the inspection, its image, the overlay to draw on it, why the image could not be
    read), read from the store and made into QImages here, on the worker thread.

    A file that is gone, or a camera frame that was never saved (by default only FAIL
    frames are), falls back to the overlay picture saved with the result, if any.
    """
    shown = inspection_detail(store, ident)
    try:
        image = read_image(shown.image_path)
    except InspectorError as exc:
        if shown.overlay_path:
            try:
                return shown, qimage_from_bgr(read_image(shown.overlay_path)), None, exc
            except InspectorError:
                pass
        return shown, None, None, exc
    canvas = render.blank((image.shape[1], image.shape[0]))
    labels = [f"{k}: {label}" for k, label in enumerate(shown.labels, start=1)]  # as the review list names them
    render.outlines(canvas, list(shown.outlines), render.DEFECT, labels=labels)
    return shown, qimage_from_bgr(image), qimage_from_bgr(canvas), None


def _fill(combo: QComboBox, names: list[str]) -> None:
    """(all) and ``names``, keeping the choice where it is still there."""
    current = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems([_ALL, *names])
    combo.setCurrentText(current if current in names else _ALL)
    combo.blockSignals(False)


def _read_rows(store, flt: ReportFilter) -> tuple[list[str], list[str], list]:
    """The products, the stations and the rows ``flt`` keeps; on a worker thread."""
    products, rows = history(store, flt)
    with store.transaction("the stations cannot be read") as session:
        stations = station_names(session)
    return products, stations, rows


class HistoryWorkspace(QWidget):
    """Signals: message(text, is_error); refreshed() once the rows of a refresh are shown."""

    message = Signal(str, bool)
    refreshed = Signal()

    def __init__(self, store_factory, parent=None) -> None:
        super().__init__(parent)
        self._store_factory = store_factory
        self._store = None
        self._store_lock = threading.Lock()  # opened once, by whichever thread asks first
        self._refreshing = None  # the worker reading the rows
        self._refresh_again = False  # asked for while one was being read
        self._export = None  # the worker writing a report
        self._reviewing: list = []  # workers storing reviews
        self._on_show: InspectionDetail | None = None  # the inspection whose picture the pane shows
        self._wanted: int | None = None  # the selected inspection, until its picture is being read
        self._loader = None  # the worker reading a picture
        self.product = QComboBox()
        self.verdict = QComboBox()
        self.verdict.addItems([_ALL, "FAIL", "PASS", "ERROR"])
        self.station = QComboBox()
        self.station.addItem(_ALL)
        self.station.setToolTip("The station that inspected (as named in Operate or by inspector run --station)")
        today = QDate.currentDate()
        self.since = QDateEdit(today.addDays(-30), calendarPopup=True)
        self.until = QDateEdit(today, calendarPopup=True)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.export_format = QComboBox()
        self.export_format.addItems(["html", "pdf", "csv"])
        export = QPushButton("Export…")
        export.clicked.connect(self.choose_export)
        filters = QHBoxLayout()
        for label, widget in (
            ("Product", self.product),
            ("Verdict", self.verdict),
            ("Station", self.station),
            ("From", self.since),
            ("To", self.until),
        ):
            filters.addWidget(QLabel(label))
            filters.addWidget(widget)
        filters.addWidget(self.refresh_button)
        filters.addStretch(1)
        filters.addWidget(self.export_format)
        filters.addWidget(export)

        self.table = QTableWidget(0, 7)
        self.table.setHorizontalHeaderLabels(["#", "Inspected at", "Product", "Verdict", "Defects", "Review", "Score"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.itemSelectionChanged.connect(self._selected)
        self.view = ImageView()
        self.detail = ElidedLabel(max_lines=2)  # a long path or error never widens the window
        self.review_panel = ReviewPanel()
        self.review_panel.review.connect(self.review)
        self.review_panel.step.connect(self.step)
        self.review_panel.operator_changed.connect(lambda _: self._update_review_buttons())
        self.confirm, self.false_alarm = self.review_panel.confirm, self.review_panel.false_alarm
        right = QVBoxLayout()
        right.addWidget(self.view, 1)
        right.addWidget(self.detail)
        right.addWidget(self.review_panel)
        right_widget = QWidget()
        right_widget.setLayout(right)
        self.review_panel.add_keys(self.table)  # and the picture: the keys work where rejects are looked at
        self.review_panel.add_keys(self.view)
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(right_widget)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(split, 1)
        self._set_review_enabled(False)

    # -- data ----------------------------------------------------------------------------

    def store(self):
        with self._store_lock:
            if self._store is None:
                self._store = self._store_factory()
            return self._store

    def current_filter(self) -> ReportFilter:
        def utc(day: QDate, at: time) -> datetime:
            local = datetime.combine(day.toPython(), at).astimezone()
            return local.astimezone(timezone.utc).replace(tzinfo=None)

        product = self.product.currentText()
        verdict = self.verdict.currentText()
        station = self.station.currentText()
        return ReportFilter(
            product=None if product in ("", _ALL) else product,
            station=None if station in ("", _ALL) else station,
            since=utc(self.since.date(), time.min),
            until=utc(self.until.date().addDays(1), time.min),
            verdict=None if verdict == _ALL else verdict,
        )

    def refresh(self) -> None:
        """Read the rows the filters keep on a worker thread: opening the database, a
        server's answer or a station's write lock may take seconds. One read at a time; a
        refresh asked for meanwhile follows it, with the filters as they are then."""
        from inspector.gui.workers import TaskWorker

        if self._refreshing is not None:
            self._refresh_again = True
            return
        flt = self.current_filter()
        worker = self._refreshing = TaskWorker(lambda: _read_rows(self.store(), flt), self)
        worker.done.connect(lambda read: self._show_rows(flt, *read))
        worker.failed.connect(lambda text: self.message.emit(text, True))
        worker.finished.connect(self._refresh_finished)
        worker.start()

    def _refresh_finished(self) -> None:
        worker, self._refreshing = self._refreshing, None
        worker.wait()  # "finished" comes just before the thread ends
        worker.deleteLater()
        if self._refresh_again:
            self._refresh_again = False
            self.refresh()
        else:
            self.refreshed.emit()

    def _show_rows(self, flt: ReportFilter, products: list[str], stations: list[str], rows: list) -> None:
        _fill(self.product, products)
        _fill(self.station, stations)
        kept = self._selected_id()
        # The rows are replaced under a selection kept by row number: without care the
        # pane would go on showing (and reviewing) the inspection that was on that row.
        self.table.blockSignals(True)
        try:
            self.table.clearSelection()
            self.table.setRowCount(len(rows))
            for r, row in enumerate(rows):
                values = (
                    str(row.inspection_id),
                    f"{row.inspected_at:%Y-%m-%d %H:%M:%S}",
                    row.product,
                    row.verdict,
                    row.error or str(row.defect_count),
                    REVIEW_NAMES.get(row.review, ""),
                    "" if row.anomaly_score is None else f"{row.anomaly_score:.3g}",
                )
                for c, value in enumerate(values):
                    item = QTableWidgetItem(value)
                    item.setData(Qt.ItemDataRole.UserRole, row.inspection_id)
                    self.table.setItem(r, c, item)
            self.table.resizeColumnsToContents()
            ids = [row.inspection_id for row in rows]
            fails = [r for r, row in enumerate(rows) if row.verdict == "FAIL"]
            if kept in ids:
                self.table.selectRow(ids.index(kept))
            elif rows:
                self.table.selectRow(fails[0] if fails else 0)  # show something: the newest reject
        finally:
            self.table.blockSignals(False)
        self._selected()  # the pane follows the selection, whichever inspection is on its row
        shown = f"{len(rows)} inspections" + (
            f" (newest {HISTORY_LIMIT}; export for all)" if len(rows) == HISTORY_LIMIT else ""
        )
        self.message.emit(f"History: {shown} for {flt.describe()}", False)

    def _selected_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else None

    def _selected(self) -> None:
        # Until its picture is shown, the pane holds no other inspection's picture to be
        # reviewed by mistake.
        ident = self._selected_id()
        self._on_show = None
        self._set_review_enabled(False)
        self.view.set_image(None)
        self.review_panel.show_detail(None)
        if ident is None:
            self._wanted = None
            self.detail.setText("")
            return
        self.detail.setText(f"#{ident} - loading…")
        self._wanted = ident
        self._load_picture()

    def _load_picture(self) -> None:
        """Read the wanted inspection and its picture on a worker thread: a 12-megapixel
        image takes about 80 ms to decode, longer than the GUI thread may block, and the
        database may be busy with a station's run. One read at a time; rows selected
        meanwhile are skipped over to the last one."""
        from inspector.gui.workers import TaskWorker

        if self._wanted is None or self._loader is not None:
            return
        try:
            store = self.store()
        except InspectorError as exc:
            self.message.emit(str(exc), True)
            return
        ident, self._wanted = self._wanted, None
        self._loader = TaskWorker(lambda: _picture(store, ident), self)
        self._loader.done.connect(self._show_picture)
        self._loader.failed.connect(lambda text: self._picture_failed(ident, text))
        self._loader.finished.connect(self._loader_finished)
        self._loader.start()

    def _loader_finished(self) -> None:
        loader, self._loader = self._loader, None
        if loader is not None:
            loader.wait()  # "finished" comes just before the thread ends: deleting it earlier aborts
            loader.deleteLater()
        self._load_picture()

    def _picture_failed(self, ident: int, text: str) -> None:
        self.message.emit(text, True)
        if ident == self._selected_id():
            self.detail.setText(f"#{ident}: {text}")

    def _show_picture(self, loaded) -> None:
        shown, image, overlay, problem = loaded
        ident = shown.inspection_id
        if ident != self._selected_id():  # another row was selected meanwhile
            return
        self._on_show = shown
        self.review_panel.show_detail(shown)
        self._update_review_buttons()
        name = Path(shown.image_path).name
        self.view.set_image(image)
        self.view.set_overlay(overlay)
        if image is None:
            self.detail.setText(f"#{ident} {shown.verdict} - {name}: no picture of it is stored ({problem})")
        elif problem is not None:  # the image is gone, its overlay is shown instead
            self.detail.setText(f"#{ident} {shown.verdict} - {name}: the overlay saved with it ({problem})")
        else:
            self.detail.setText(
                f"#{ident} {shown.verdict} - {name}"
                + (f": {shown.error}" if shown.error else f", {len(shown.outlines)} defect(s)")
            )

    def _update_review_buttons(self) -> None:
        """Review what is on show: a reject whose picture is up and the selected row, and
        not while a review is being stored."""
        on_show = self._on_show
        self._set_review_enabled(
            on_show is not None
            and on_show.verdict == "FAIL"
            and on_show.inspection_id == self._selected_id()
            and not self._reviewing
        )

    def _set_review_enabled(self, enabled: bool) -> None:
        self.review_panel.set_enabled(enabled)

    def review(self, decision: str):
        """Store a review of the reject on show (or of the defect chosen in it) under the
        reviewer's name, on a worker thread (the database may be busy with a station's
        run); once stored, the next defect or reject comes up. Returns the worker, or
        None when nothing may be reviewed now."""
        from inspector.gui.workers import TaskWorker

        shown = self._on_show
        operator = self.review_panel.reviewer()
        if shown is None or shown.verdict != "FAIL" or shown.inspection_id != self._selected_id() or self._reviewing:
            return None
        if not operator:
            self.message.emit("Enter your name as reviewer first: each review is stored under it.", True)
            return None
        ident, defect_id, note = shown.inspection_id, self.review_panel.target(), self.review_panel.note.text()
        store = self.store()
        worker = TaskWorker(
            lambda: record_review(store, ident, decision, defect_id=defect_id, operator=operator, note=note), self
        )
        worker.done.connect(lambda _: self._reviewed(ident, defect_id, decision))
        worker.failed.connect(lambda text: self.message.emit(text, True))
        worker.finished.connect(lambda: self._worker_done(worker))
        self._reviewing.append(worker)
        self._update_review_buttons()  # one review at a time
        worker.start()
        return worker

    def _reviewed(self, ident: int, defect_id: int | None, decision: str) -> None:
        what = f"inspection #{ident}" if defect_id is None else f"defect #{defect_id} of inspection #{ident}"
        self.message.emit(f"Reviewed {what}: {REVIEW_NAMES[decision]}", False)
        if defect_id is None:
            for row in range(self.table.rowCount()):
                if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == ident:
                    self.table.item(row, _REVIEW_COLUMN).setText(REVIEW_NAMES[decision])
        if self._on_show is None or self._on_show.inspection_id != ident:
            return  # the reviewer has moved on already
        self.review_panel.mark(defect_id, decision)
        self.review_panel.note.clear()
        if not self.review_panel.next_target(defect_id) and not self.step(1, quiet=True):
            self.message.emit(f"Reviewed {what}: {REVIEW_NAMES[decision]}; it was the last reject in this list", False)

    def step(self, direction: int, *, quiet: bool = False) -> bool:
        """Select the next (+1, further down the list: older) or previous (-1) reject;
        False where there is none (said, unless ``quiet``)."""
        rows = self.table.selectionModel().selectedRows()
        here = rows[0].row() if rows else -1
        fails = [r for r in range(self.table.rowCount()) if self.table.item(r, 3).text() == "FAIL"]
        ahead = [r for r in fails if r > here] if direction > 0 else [r for r in reversed(fails) if r < here]
        if not ahead:
            if not quiet:
                self.message.emit(f"No {'older' if direction > 0 else 'newer'} reject in this list.", False)
            return False
        self.table.selectRow(ahead[0])
        self.table.scrollToItem(self.table.item(ahead[0], 0))
        return True

    def _worker_done(self, worker) -> None:
        worker.wait()  # "finished" comes just before the thread ends: deleting it earlier aborts
        self._reviewing.remove(worker)
        worker.deleteLater()
        self._update_review_buttons()  # the review is stored (or not): the next may start

    def choose_export(self) -> None:
        fmt = self.export_format.currentText()
        path, _ = QFileDialog.getSaveFileName(self, "Export report", f"report.{fmt}", f"*.{fmt}")
        if path:
            self.export(Path(path), fmt)

    def export(self, path: Path, fmt: str):
        """Export what is filtered, in a worker thread; returns the worker."""
        from inspector.gui.workers import TaskWorker
        from inspector.report import export_report

        try:
            store = self.store()
        except InspectorError as exc:
            self.message.emit(str(exc), True)
            return None
        flt = self.current_filter()
        if self._export is not None and self._export.isRunning():
            self.message.emit("A report is still being exported; export again when it is written.", True)
            return None
        self._export = TaskWorker(lambda: export_report(store, flt, fmt, path, print_pdf=write_pdf), self)
        self._export.done.connect(
            lambda written: self.message.emit("Exported " + ", ".join(str(p) for p in written), False)
        )
        self._export.failed.connect(lambda text: self.message.emit(text, True))
        self.message.emit(f"Exporting {fmt.upper()} report…", False)
        self._export.start()
        return self._export

    def busy(self) -> bool:
        """Whether a worker is reading or writing the database."""
        exporting = self._export is not None and self._export.isRunning()
        return self._refreshing is not None or self._loader is not None or bool(self._reviewing) or exporting

    def use_store_factory(self, store_factory) -> None:
        """Work on another database from now on (not while busy: see ``busy``)."""
        if self._store is not None:
            self._store.close()
        self._store, self._store_factory = None, store_factory
        self._on_show, self._wanted = None, None
        self.table.setRowCount(0)
        self._selected()

    def shutdown(self) -> None:
        self._wanted = None
        self._refresh_again = False
        if self._refreshing is not None:
            self._refreshing.wait()
        if self._loader is not None:
            self._loader.wait()
        for worker in list(self._reviewing):
            worker.wait()
        if self._export is not None:
            # A report being written is finished, not cut off: Qt aborts the process if a
            # running thread's object is destroyed.
            self._export.wait()
        if self._store is not None:
            self._store.close()
