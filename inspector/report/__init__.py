"""Inspection reports: CSV, self-contained HTML and PDF from the results database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Literal

from inspector.report.html import ReportInfo
from inspector.report.query import ReportFilter, gather
from inspector.store.database import Store

ReportFormat = Literal["csv", "html", "pdf"]
FORMATS: tuple[ReportFormat, ...] = ("csv", "html", "pdf")


PdfPrinter = Callable[[str, Path], Path]  # the report's HTML -> a PDF file (inspector.gui.pdf.write_pdf)


def export_report(
    store: Store,
    flt: ReportFilter,
    fmt: ReportFormat,
    out: Path,
    info: ReportInfo | None = None,
    *,
    print_pdf: PdfPrinter | None = None,
) -> list[Path]:
    """Write a report of the inspections matching ``flt``; returns the files written.
    HTML and PDF are one document (see ``html.py``); ``info`` adds lot, order and who
    signs it. A PDF is that document printed by ``print_pdf`` (Qt's, which lives in the
    GUI package: the face asking for a PDF hands it over)."""
    if fmt == "pdf" and print_pdf is None:
        raise ValueError("a PDF report needs print_pdf (inspector.gui.pdf.write_pdf)")
    with store.session() as session:
        if fmt == "csv":
            from inspector.report.csv_export import write_csv

            return list(write_csv(session, flt, out))
        data = gather(session, flt)
        sections = []
        if len(data.recipes) > 1:  # one section per recipe when several were used
            for use in data.recipes:
                narrowed = replace(flt, recipe_sha256=use.recipe_sha256)
                sections.append(
                    (f"{use.product} - recipe {use.recipe_sha256[:12]}", gather(session, narrowed, rejects_cap=0))
                )
    out.parent.mkdir(parents=True, exist_ok=True)
    from inspector.report.html import render_html

    base = store.sqlite_path.parent if store.sqlite_path is not None else None
    html = render_html(data, per_recipe=sections, info=info, base=base)
    if fmt == "html":
        out.write_text(html, encoding="utf-8")
        return [out]
    return [print_pdf(html, out)]


__all__ = ["FORMATS", "ReportFilter", "ReportInfo", "export_report"]
