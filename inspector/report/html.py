"""The report as one HTML document: the HTML report itself (one self-contained file that
opens offline) and the source the PDF is printed from (``gui/pdf.py``), so the two never
differ in content.

It keeps to what both a browser and Qt's text layout render: tables for layout, charts
as SVG images, pictures as embedded JPEGs, a little CSS.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import cv2

from inspector import __version__
from inspector.report.charts import pareto_svg, rate_svg
from inspector.report.query import Kpis, Reject, ReportData
from inspector.report.thumbnails import thumbnail

_STYLE = """
body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{margin-bottom:4px} h2{margin-top:28px;border-bottom:1px solid #ccc;padding-bottom:4px}
.muted{color:#666} table.kpis td{border:1px solid #ddd;padding:6px 4px;text-align:center}
.v{font-size:20px;font-weight:bold} .l{color:#666;font-size:11px}
.pass{color:#1b7f3b} .fail{color:#c0392b} .error{color:#b9770e}
table{border-collapse:collapse;width:100%;font-size:13px} th,td{border-bottom:1px solid #e3e3e3;padding:6px;
text-align:left;vertical-align:top} th{background:#f5f5f5}
img.thumb{border:1px solid #ccc} img.crop{border:1px solid #ccc}
table.defects td{border:none;padding:0 6px 4px 0}
code{font-size:12px} table.signoff td{border:none;padding:18px 8px 2px 0}
"""

# Defect classes as the people reading a report call them (text classes are shown as named).
_CLASS_NAMES = {
    "defect": "Defect",
    "missing feature": "Missing feature",
    "difference": "Visible difference from the good part",
    "anomaly": "Unusual surface",
    "not registered": "Part could not be aligned",
}


@dataclass(frozen=True)
class ReportInfo:
    """What the person making the report adds: the lot and order it covers, who signs it."""

    lot: str = ""
    order: str = ""
    signed_by: str = ""


def class_name(label: str) -> str:
    return _CLASS_NAMES.get(label, label)


def local_time(moment: datetime) -> str:
    """A stored time (UTC) in the plant's local time, with its zone."""
    if moment.tzinfo is None:  # SQLite keeps no zone: times are stored in UTC
        moment = moment.replace(tzinfo=timezone.utc)
    here = moment.astimezone()
    return f"{here:%Y-%m-%d %H:%M} {here.tzname() or here.strftime('UTC%z')}"


def _image(data: bytes, mime: str, alt: str, cls: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img class="{cls}" src="data:{mime};base64,{base64.b64encode(data).decode("ascii")}" alt="{alt}"{size}>'


def _chart(svg_or_note: str, label: str) -> str:
    """A chart as an SVG image (which Qt's text layout draws; an inline <svg> it would not)."""
    if not svg_or_note.startswith("<svg"):
        return svg_or_note
    return _image(svg_or_note.encode("utf-8"), "image/svg+xml", label, "chart")


def thumbnail_jpeg(paths: tuple[str | None, ...], base: Path | None, width: int = 200) -> bytes | None:
    """A small JPEG of the first image still readable: each path as stored, then (for
    rows stored with a relative path) beside the database."""
    tried = [p for p in paths if p]
    if base is not None:
        tried += [str(base / p) for p in paths if p and not Path(p).is_absolute()]
    small = thumbnail(*tried, width=width)
    if small is None:
        return None
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return encoded.tobytes() if ok else None


def _kpi_cards(k: Kpis) -> str:
    y = "n/a" if k.yield_percent is None else f"{k.yield_percent:.1f} %"
    judged = k.passed + k.failed
    # False alarms found in review were good parts: the yield they leave.
    reviewed = f"{100.0 * (k.passed + k.false_alarms) / judged:.1f} %" if judged else "n/a"
    cards = [
        ("Inspected", k.inspected, ""),
        ("Pass", k.passed, "pass"),
        ("Fail", k.failed, "fail"),
        ("Error", k.errors, "error"),
        ("Yield", y, ""),
        ("Yield after review", reviewed, ""),
        ("Confirmed defects", k.confirmed, ""),
        ("False alarms", k.false_alarms, ""),
    ]
    cells = "".join(
        f'<td><span class="v {cls}">{escape(str(v))}</span><br><span class="l">{label}</span></td>'
        for label, v, cls in cards
    )
    return f'<table class="kpis" width="100%"><tr>{cells}</tr></table>'


def _recipes_table(data: ReportData) -> str:
    rows = "".join(
        f"<tr><td>{escape(r.product)}</td><td><code>{r.recipe_sha256[:12]}</code></td>"
        f"<td>{escape(', '.join(r.model_names))}<br><code>{escape(', '.join(s[:12] for s in r.model_sha256s))}"
        f"</code></td><td>{escape(', '.join(r.stations))}</td><td>{r.inspected}</td><td>{r.failed}</td></tr>"
        for r in data.recipes
    )
    return (
        '<table width="100%"><tr><th>Product</th><th>Recipe version</th><th>Model</th><th>Station</th>'
        f"<th>Inspected</th><th>Failed</th></tr>{rows}</table>"
    )


def _reject_frame(r: Reject, base: Path | None) -> str:
    frame = thumbnail_jpeg((r.overlay_path, r.image_path), base)
    if frame:
        return _image(frame, "image/jpeg", f"overlay of inspection {r.inspection_id}", "thumb", 150)
    return '<span class="muted">frame not available here</span>'


def _reject_defects(r: Reject) -> str:
    """Each defect: its own picture (kept with the row, so shown wherever the report is
    made), its class and size."""
    lines = []
    crops = r.crops or (None,) * len(r.labels)
    for k, (label, area, jpeg) in enumerate(zip(r.labels, r.areas, crops, strict=True)):
        picture = (
            _image(jpeg, "image/jpeg", f"defect {k + 1} of inspection {r.inspection_id}", "crop", 72) if jpeg else ""
        )
        lines.append(f"<tr><td>{picture}</td><td>{escape(class_name(label))}<br>{area:.0f} px</td></tr>")
    return f'<table class="defects">{"".join(lines)}</table>'


def _rejects_table(data: ReportData, base: Path | None) -> str:
    if not data.rejects:
        return '<p class="muted">No rejects in this period.</p>'
    rows = []
    for r in data.rejects:
        name = Path(r.image_path).name or r.image_path
        rows.append(
            f"<tr><td>{_reject_frame(r, base)}</td><td>#{r.inspection_id}<br>{local_time(r.inspected_at)}<br>"
            f'{escape(r.product)}<br><span class="muted" title="{escape(r.image_path)}">{escape(name)}</span></td>'
            f"<td>{_reject_defects(r)}</td><td>{escape(r.review)}</td></tr>"
        )
    note = (
        f'<p class="muted">{data.rejects_left_out} more rejects are not shown; export CSV for all of them.</p>'
        if data.rejects_left_out
        else ""
    )
    return (
        '<table width="100%"><thead><tr><th width="26%">Frame</th><th width="24%">Inspection</th>'
        f'<th width="34%">Defects</th><th width="16%">Review</th></tr></thead>{"".join(rows)}</table>{note}'
    )


def _header(data: ReportData, info: ReportInfo) -> str:
    k = data.kpis
    products = ", ".join(sorted({r.product for r in data.recipes})) or "-"
    period = f"{local_time(k.first)} to {local_time(k.last)}" if k.first and k.last else "-"
    facts = [("Products", products), ("Period", period), ("Filter", data.filter.describe())]
    facts += [(label, value) for label, value in (("Lot", info.lot), ("Order", info.order)) if value]
    facts.append(("Generated", f"{local_time(data.generated_at)} by Inspector {__version__}"))
    rows = "".join(f'<tr><th width="18%">{label}</th><td>{escape(value)}</td></tr>' for label, value in facts)
    return f'<h1>Inspection report</h1><table width="100%">{rows}</table>'


def _sign_off(info: ReportInfo) -> str:
    name = escape(info.signed_by) if info.signed_by else "&nbsp;" * 30
    return (
        '<h2>Sign-off</h2><table class="signoff"><tr><td>Checked by: <u>'
        f"{name}</u></td><td>Date: <u>{'&nbsp;' * 20}</u></td><td>Signature: <u>{'&nbsp;' * 30}</u></td></tr></table>"
    )


def render_html(
    data: ReportData,
    *,
    per_recipe: list[tuple[str, ReportData]] = (),
    info: ReportInfo | None = None,
    base: Path | None = None,
) -> str:
    """The whole report as one HTML string. ``base``: the folder rows' relative image
    paths are relative to (the database's)."""
    info = info or ReportInfo()
    body = [_header(data, info)]
    if data.empty:
        body.append(f"<h2>No inspections</h2><p>No inspection matches {escape(data.filter.describe())}.</p>")
    else:
        body += [
            "<h2>Key figures</h2>",
            _kpi_cards(data.kpis),
            "<h2>Recipes and models</h2>",
            _recipes_table(data),
            "<h2>Defects by class</h2>",
            _chart(pareto_svg([(class_name(c), n) for c, n in data.defects_by_class]), "Defects by class"),
            f"<h2>Fail rate per {data.bucket} (UTC {data.bucket}s)</h2>",
            _chart(rate_svg(data.rate_over_time, bucket=data.bucket), "Fail rate over time"),
        ]
        for title, section in per_recipe:
            pareto = pareto_svg([(class_name(c), n) for c, n in section.defects_by_class])
            body += [f"<h2>{escape(title)}</h2>", _kpi_cards(section.kpis), _chart(pareto, title)]
        body += ["<h2>Rejects</h2>", _rejects_table(data, base)]
    body.append(_sign_off(info))
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Inspection report</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
