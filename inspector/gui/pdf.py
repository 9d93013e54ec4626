"""The PDF report: the HTML report's document (``report/html.py``), laid out and paginated
by Qt's text engine. Here, where Qt lives; the faces hand it to ``export_report``.

One document is the source of both formats; Qt's QTextDocument gives the
pagination, tables that continue across pages with their header row, and the page
numbers. Text layout and the PDF writer come from QtGui, no widget is made; where no Qt
application runs (the command line), one is started on the offscreen platform, which
needs no display.
"""

from __future__ import annotations

import threading
from pathlib import Path

_start_lock = threading.Lock()


def _qt_application() -> None:
    # A QApplication (not just a QGuiApplication): a process that opens windows after
    # printing a report (the tests do) needs the widgets' kind, and Qt allows one.
    from PySide6.QtWidgets import QApplication

    with _start_lock:
        if QApplication.instance() is None:
            QApplication(["inspector-report", "-platform", "offscreen"])


def write_pdf(html: str, path: Path) -> Path:
    """Print the report's HTML to an A4 PDF at ``path``; returns it."""
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument

    _qt_application()
    writer = QPdfWriter(str(path))
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setPageMargins(QMarginsF(12, 12, 12, 16), QPageLayout.Unit.Millimeter)
    writer.setResolution(110)  # the HTML's pixel sizes come out near their screen size
    writer.setTitle("Inspection report")
    writer.setCreator("Inspector")
    document = QTextDocument()
    document.setHtml(html)
    document.print_(writer)
    del writer  # the file is finished when the writer goes
    if not path.is_file() or path.stat().st_size == 0:
        raise OSError(f"{path}: the PDF could not be written")
    return path
