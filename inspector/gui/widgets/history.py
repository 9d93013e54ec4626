"""History: stored inspections by product, date and verdict; view, review, export."""

from __future__ import annotations

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
from inspector.gui.widgets.image_view import ImageView, qimage_from_bgr
from inspector.report.query import (
    HISTORY_LIMIT,
    InspectionDetail,
    ReportFilter,
    history,
    inspection_detail,
    record_review,
)

REVIEW_NAMES = {"confirmed": "confirmed", "false_alarm": "false alarm"}
_ALL = "(all)"


def _picture(shown: InspectionDetail) -> tuple[InspectionDetail, QImage | None, QImage | None, InspectorError | None]:
    """(shown, image, overlay to draw on it, why the image could not be read), as
    QImages made here, on the worker thread.

    A file that is gone, or a camera frame that was never saved (by default only FAIL
    frames are), falls back to the overlay picture saved with the result, if any.
    """
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
    render.outlines(canvas, list(shown.outlines), render.DEFECT, labels=list(shown.labels))
    return shown, qimage_from_bgr(image), qimage_from_bgr(canvas), None


class HistoryWorkspace(QWidget):
    message = Signal(str, bool)

    def __init__(self, store_factory, parent=None) -> None:
        super().__init__(parent)
        self._store_factory = store_factory
        self._store = None
        self._export = None  # the worker writing a report
        self._reviewing: list = []  # workers storing reviews
        self._on_show: InspectionDetail | None = None  # the inspection whose picture the pane shows
        self._wanted: InspectionDetail | None = None  # the selected inspection, until its picture is being read
        self._loader = None  # the worker reading a picture
        self.product = QComboBox()
        self.verdict = QComboBox()
        self.verdict.addItems([_ALL, "FAIL", "PASS", "ERROR"])
        today = QDate.currentDate()
        self.since = QDateEdit(today.addDays(-30), calendarPopup=True)
        self.until = QDateEdit(today, calendarPopup=True)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        self.export_format = QComboBox()
        self.export_format.addItems(["html", "pdf", "csv"])
        export = QPushButton("Export…")
        export.clicked.connect(self.choose_export)
        filters = QHBoxLayout()
        for label, widget in (
            ("Product", self.product),
            ("Verdict", self.verdict),
            ("From", self.since),
            ("To", self.until),
        ):
            filters.addWidget(QLabel(label))
            filters.addWidget(widget)
        filters.addWidget(refresh)
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
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.confirm = QPushButton("Defect confirmed")
        self.false_alarm = QPushButton("False alarm")
        self.confirm.clicked.connect(lambda: self.review("confirmed"))
        self.false_alarm.clicked.connect(lambda: self.review("false_alarm"))
        review_row = QHBoxLayout()
        review_row.addWidget(self.confirm)
        review_row.addWidget(self.false_alarm)
        right = QVBoxLayout()
        right.addWidget(self.view, 1)
        right.addWidget(self.detail)
        right.addLayout(review_row)
        right_widget = QWidget()
        right_widget.setLayout(right)
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
        if self._store is None:
            self._store = self._store_factory()
        return self._store

    def current_filter(self) -> ReportFilter:
        def utc(day: QDate, at: time) -> datetime:
            local = datetime.combine(day.toPython(), at).astimezone()
            return local.astimezone(timezone.utc).replace(tzinfo=None)

        product = self.product.currentText()
        verdict = self.verdict.currentText()
        return ReportFilter(
            product=None if product in ("", _ALL) else product,
            since=utc(self.since.date(), time.min),
            until=utc(self.until.date().addDays(1), time.min),
            verdict=None if verdict == _ALL else verdict,
        )

    def refresh(self) -> None:
        try:
            store = self.store()
        except InspectorError as exc:
            self.message.emit(str(exc), True)
            return
        flt = self.current_filter()
        try:
            products, rows = history(store, flt)
        except InspectorError as exc:
            self.message.emit(str(exc), True)
            return
        current = self.product.currentText()
        self.product.blockSignals(True)
        self.product.clear()
        self.product.addItems([_ALL, *products])
        self.product.setCurrentText(current if current in products else _ALL)
        self.product.blockSignals(False)
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
        if rows and not self.table.selectionModel().selectedRows():
            fails = [r for r, row in enumerate(rows) if row.verdict == "FAIL"]
            self.table.selectRow(fails[0] if fails else 0)  # show something: the newest reject
        shown = f"{len(rows)} inspections" + (
            f" (newest {HISTORY_LIMIT}; export for all)" if len(rows) == HISTORY_LIMIT else ""
        )
        self.message.emit(f"History: {shown} for {flt.describe()}", False)

    def _selected_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else None

    def _selected(self) -> None:
        ident = self._selected_id()
        if ident is None:
            self._set_review_enabled(False)
            return
        try:
            shown = inspection_detail(self.store(), ident)
        except InspectorError as exc:
            self.message.emit(str(exc), True)
            return
        # Until its picture is shown, the pane holds no other inspection's picture to be
        # reviewed by mistake.
        self._on_show = None
        self._set_review_enabled(False)
        self.view.set_image(None)
        self.detail.setText(f"#{ident} {shown.verdict} - loading {Path(shown.image_path).name}…")
        self._wanted = shown
        self._load_picture()

    def _load_picture(self) -> None:
        """Read the wanted inspection's picture on a worker thread: a 12-megapixel image
        takes about 80 ms to decode, longer than the GUI thread may block. One read at a
        time; rows selected meanwhile are skipped over to the last one."""
        from inspector.gui.workers import TaskWorker

        if self._wanted is None or self._loader is not None:
            return
        shown, self._wanted = self._wanted, None
        self._loader = TaskWorker(lambda: _picture(shown), self)
        self._loader.done.connect(self._show_picture)
        self._loader.failed.connect(lambda text: self._picture_failed(shown, text))
        self._loader.finished.connect(self._loader_finished)
        self._loader.start()

    def _loader_finished(self) -> None:
        loader, self._loader = self._loader, None
        if loader is not None:
            loader.wait()  # "finished" comes just before the thread ends: deleting it earlier aborts
            loader.deleteLater()
        self._load_picture()

    def _picture_failed(self, shown: InspectionDetail, text: str) -> None:
        self.message.emit(text, True)
        if shown.inspection_id == self._selected_id():
            self.detail.setText(f"#{shown.inspection_id} {shown.verdict} - {Path(shown.image_path).name}: {text}")
            self._on_show = shown
            self._update_review_buttons()

    def _show_picture(self, loaded) -> None:
        shown, image, overlay, problem = loaded
        ident = shown.inspection_id
        if ident != self._selected_id():  # another row was selected meanwhile
            return
        self._on_show = shown
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
        self.confirm.setEnabled(enabled)
        self.false_alarm.setEnabled(enabled)

    def review(self, decision: str):
        """Store a review of the selected reject on a worker thread (the database may be
        busy with a station's run); returns the worker, or None when nothing is selected."""
        from inspector.gui.workers import TaskWorker

        ident = self._selected_id()
        if ident is None:
            return None
        store = self.store()
        worker = TaskWorker(lambda: record_review(store, ident, decision), self)
        worker.done.connect(lambda _: self._reviewed(ident, decision))
        worker.failed.connect(lambda text: self.message.emit(text, True))
        worker.finished.connect(lambda: self._worker_done(worker))
        self._reviewing.append(worker)
        self._update_review_buttons()  # one review at a time
        worker.start()
        return worker

    def _reviewed(self, ident: int, decision: str) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == ident:
                self.table.item(row, 5).setText(REVIEW_NAMES[decision])
        self.message.emit(f"Inspection #{ident} reviewed: {decision.replace('_', ' ')}", False)

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
        self._export = TaskWorker(lambda: export_report(store, flt, fmt, path), self)
        self._export.done.connect(
            lambda written: self.message.emit("Exported " + ", ".join(str(p) for p in written), False)
        )
        self._export.failed.connect(lambda text: self.message.emit(text, True))
        self.message.emit(f"Exporting {fmt.upper()} report…", False)
        self._export.start()
        return self._export

    def shutdown(self) -> None:
        self._wanted = None
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
