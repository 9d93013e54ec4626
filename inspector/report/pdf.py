"""The PDF report: the same content as the HTML one, paginated, drawn with matplotlib.

Figures are built directly on the PDF backend (no pyplot), so no GUI toolkit loads.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from inspector import __version__
from inspector.report.query import ReportData
from inspector.report.thumbnails import thumbnail

A4 = (8.27, 11.69)
_REJECTS_PER_PAGE = 6


def _page() -> Figure:
    return Figure(figsize=A4)


def _text(fig: Figure, y: float, text: str, *, size: float = 10, weight: str = "normal", color: str = "#222"):
    fig.text(0.07, y, text, fontsize=size, weight=weight, color=color, va="top", wrap=True)


def _table(fig: Figure, rect, rows: list[list[str]], header: list[str]) -> None:
    ax = fig.add_axes(rect)
    ax.axis("off")
    table = ax.table(cellText=rows or [["-"] * len(header)], colLabels=header, loc="upper left", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.4)
    for (r, _), cell in table.get_celld().items():
        cell.set_edgecolor("#ccc")
        if r == 0:
            cell.set_facecolor("#eee")


def _summary_page(pdf: PdfPages, data: ReportData) -> None:
    fig = _page()
    k = data.kpis
    _text(fig, 0.95, "Inspection report", size=20, weight="bold")
    period = f"{k.first:%Y-%m-%d %H:%M} to {k.last:%Y-%m-%d %H:%M} UTC" if k.first and k.last else "-"
    products = ", ".join(sorted({r.product for r in data.recipes})) or "-"
    _text(
        fig,
        0.91,
        f"Products: {products}\nPeriod: {period}\nFilter: {data.filter.describe()}\n"
        f"Generated {data.generated_at:%Y-%m-%d %H:%M} UTC by Inspector {__version__}",
        size=9,
        color="#555",
    )
    if data.empty:
        _text(fig, 0.8, f"No inspection matches {data.filter.describe()}.", size=12)
        pdf.savefig(fig)
        return
    y = "n/a" if k.yield_percent is None else f"{k.yield_percent:.1f} %"
    _text(fig, 0.8, "Key figures", size=13, weight="bold")
    _table(
        fig,
        [0.07, 0.63, 0.86, 0.15],
        [[str(k.inspected), str(k.passed), str(k.failed), str(k.errors), y, str(k.confirmed), str(k.false_alarms)]],
        ["Inspected", "Pass", "Fail", "Error", "Yield", "Confirmed", "False alarms"],
    )
    _text(fig, 0.68, "Recipes and models", size=13, weight="bold")
    rows = [
        [
            r.product,
            r.recipe_sha256[:12],
            ", ".join(r.model_names),
            ", ".join(s[:12] for s in r.model_sha256s),
            ", ".join(r.stations),
            str(r.inspected),
            str(r.failed),
        ]
        for r in data.recipes
    ]
    _table(
        fig,
        [0.07, 0.3, 0.86, 0.28],
        rows,
        ["Product", "Recipe", "Model", "Model SHA-256", "Station", "Inspected", "Failed"],
    )
    pdf.savefig(fig)


def _charts_page(pdf: PdfPages, data: ReportData) -> None:
    fig = _page()
    ax = fig.add_axes([0.1, 0.58, 0.8, 0.32])
    labels = [label for label, _ in data.defects_by_class]
    counts = [count for _, count in data.defects_by_class]
    ax.set_title("Defects by class")
    if counts:
        ax.bar(range(len(counts)), counts, color="#d55e00")
        ax.set_xticks(range(len(counts)), labels, rotation=20, fontsize=8)
        share = ax.twinx()
        share.plot(range(len(counts)), 100 * np.cumsum(counts) / sum(counts), color="#0072b2", marker="o")
        share.set_ylim(0, 105)
        share.set_ylabel("cumulative %")
    else:
        ax.text(0.5, 0.5, "No defects in this period", ha="center", transform=ax.transAxes)
    ax2 = fig.add_axes([0.1, 0.12, 0.8, 0.32])
    ax2.set_title(f"Fail rate per {data.bucket}")
    if data.rate_over_time:
        when = [w for w, _, _ in data.rate_over_time]
        rate = [100 * f / n if n else 0 for _, n, f in data.rate_over_time]
        ax2.plot(when, rate, color="#d55e00", marker="o")
        ax2.set_ylabel("% FAIL")
        ax2.tick_params(axis="x", labelsize=7, rotation=20)
    pdf.savefig(fig)


def _decoded(jpeg: bytes | None) -> np.ndarray | None:
    """A defect's stored picture, or None (none kept, or not a picture)."""
    if not jpeg:
        return None
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def _rejects_pages(pdf: PdfPages, data: ReportData) -> None:
    for start in range(0, max(len(data.rejects), 1), _REJECTS_PER_PAGE):
        fig = _page()
        _text(fig, 0.96, "Rejects" + (" (continued)" if start else ""), size=13, weight="bold")
        if not data.rejects:
            _text(fig, 0.9, "No rejects in this period.")
        for row, reject in enumerate(data.rejects[start : start + _REJECTS_PER_PAGE]):
            top = 0.9 - row * 0.145
            picture = thumbnail(reject.overlay_path, reject.image_path, width=300)
            ax = fig.add_axes([0.07, top - 0.13, 0.3, 0.13])
            ax.axis("off")
            if picture is not None:
                ax.imshow(cv2.cvtColor(picture, cv2.COLOR_BGR2RGB))
            for k, crop in enumerate(c for c in map(_decoded, reject.crops) if c is not None):
                if k == 3:  # the first three defects' pictures beside the text
                    break
                crop_ax = fig.add_axes([0.64 + 0.1 * k, top - 0.13, 0.09, 0.09])
                crop_ax.axis("off")
                crop_ax.imshow(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
            defects = "; ".join(f"{lb} ({a:.0f} px)" for lb, a in zip(reject.labels, reject.areas, strict=True))
            fig.text(
                0.4,
                top - 0.01,
                f"#{reject.inspection_id}  {reject.inspected_at:%Y-%m-%d %H:%M:%S}  "
                f"{reject.product}\n{Path(reject.image_path).name}\nDefects: {defects}\n"
                f"Review: {reject.review}",
                fontsize=8,
                va="top",
                wrap=True,
            )
        if start + _REJECTS_PER_PAGE >= len(data.rejects) and data.rejects_left_out:
            _text(
                fig,
                0.04,
                f"{data.rejects_left_out} more rejects are not shown; export CSV for all of them.",
                size=8,
                color="#555",
            )
        pdf.savefig(fig)


def write_pdf(data: ReportData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Product and file names are text, never math: "$...$" in a name made matplotlib
    # parse it as TeX, fail, and leave a short PDF that looked valid.
    with matplotlib.rc_context({"text.parse_math": False}), PdfPages(path) as pdf:
        _summary_page(pdf, data)
        if not data.empty:
            _charts_page(pdf, data)
            _rejects_pages(pdf, data)
    return path
