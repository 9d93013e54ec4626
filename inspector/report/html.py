"""The HTML report: one self-contained file (images and charts embedded) that opens offline."""

from __future__ import annotations

import base64
from html import escape

import cv2

from inspector import __version__
from inspector.report.charts import pareto_svg, rate_svg
from inspector.report.query import Kpis, ReportData
from inspector.report.thumbnails import thumbnail

_STYLE = """
body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{margin-bottom:4px} h2{margin-top:28px;border-bottom:1px solid #ccc;padding-bottom:4px}
.muted{color:#666} .kpis{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.kpi{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:110px}
.kpi .v{font-size:26px;font-weight:bold} .kpi .l{color:#666;font-size:12px}
.pass{color:#1b7f3b} .fail{color:#c0392b} .error{color:#b9770e}
table{border-collapse:collapse;width:100%;font-size:13px} th,td{border-bottom:1px solid #e3e3e3;padding:6px;
text-align:left;vertical-align:top} th{background:#f5f5f5} img.thumb{width:200px;border:1px solid #ccc}
img.crop{max-width:96px;max-height:96px;border:1px solid #ccc;margin:0 4px 4px 0}
code{font-size:12px}
"""


def thumbnail_data_uri(*paths: str | None, width: int = 200) -> str | None:
    """A small JPEG of the first readable image as a data: URI, or None when none is left."""
    small = thumbnail(*paths, width=width)
    if small is None:
        return None
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii") if ok else None


def _kpi_cards(k: Kpis) -> str:
    y = "n/a" if k.yield_percent is None else f"{k.yield_percent:.1f} %"
    cards = [
        ("Inspected", k.inspected, ""),
        ("Pass", k.passed, "pass"),
        ("Fail", k.failed, "fail"),
        ("Error", k.errors, "error"),
        ("Yield", y, ""),
        ("Confirmed defects", k.confirmed, ""),
        ("False alarms", k.false_alarms, ""),
    ]
    return (
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi"><div class="v {cls}">{escape(str(v))}</div><div class="l">{label}</div></div>'
            for label, v, cls in cards
        )
        + "</div>"
    )


def _recipes_table(data: ReportData) -> str:
    rows = "".join(
        f"<tr><td>{escape(r.product)}</td><td><code>{r.recipe_sha256[:12]}</code></td>"
        f"<td>{escape(', '.join(r.model_names))}<br><code>{escape(', '.join(s[:12] for s in r.model_sha256s))}"
        f"</code></td><td>{escape(', '.join(r.stations))}</td><td>{r.inspected}</td><td>{r.failed}</td></tr>"
        for r in data.recipes
    )
    return (
        "<table><tr><th>Product</th><th>Recipe version</th><th>Model</th><th>Station</th>"
        f"<th>Inspected</th><th>Failed</th></tr>{rows}</table>"
    )


def _rejects_table(data: ReportData) -> str:
    if not data.rejects:
        return '<p class="muted">No rejects in this period.</p>'
    rows = []
    for r in data.rejects:
        uri = thumbnail_data_uri(r.overlay_path, r.image_path)
        crops = "".join(
            f'<img class="crop" src="data:image/jpeg;base64,{base64.b64encode(jpeg).decode("ascii")}" '
            f'alt="defect {k + 1} of inspection {r.inspection_id}">'
            for k, jpeg in enumerate(r.crops)
            if jpeg
        )
        frame = f'<img class="thumb" src="{uri}" alt="overlay of inspection {r.inspection_id}">' if uri else ""
        # The defects' own pictures travel with the row: a report made from a central
        # database shows them where the station's image files are out of reach.
        picture = (
            (frame + (f"<br>{crops}" if crops else ""))
            if frame or crops
            else '<span class="muted">image not available</span>'
        )
        defects = "<br>".join(f"{escape(lb)} ({a:.0f} px)" for lb, a in zip(r.labels, r.areas, strict=True))
        rows.append(
            f"<tr><td>{picture}</td><td>{r.inspection_id}</td>"
            f"<td>{r.inspected_at:%Y-%m-%d %H:%M:%S}</td><td>{escape(r.product)}<br>"
            f'<span class="muted">{escape(r.image_path)}</span></td><td>{defects}</td>'
            f"<td>{escape(r.review)}</td></tr>"
        )
    note = (
        f'<p class="muted">{data.rejects_left_out} more rejects are not shown; export CSV for all of them.</p>'
        if data.rejects_left_out
        else ""
    )
    return (
        "<table><tr><th>Overlay</th><th>#</th><th>Inspected at</th><th>Product / image</th>"
        f"<th>Defects</th><th>Review</th></tr>{''.join(rows)}</table>{note}"
    )


def render_html(data: ReportData, *, per_recipe: list[tuple[str, ReportData]] = ()) -> str:
    """The whole report as one HTML string."""
    k = data.kpis
    products = ", ".join(sorted({r.product for r in data.recipes})) or "-"
    period = f"{k.first:%Y-%m-%d %H:%M} to {k.last:%Y-%m-%d %H:%M} (UTC)" if k.first and k.last else "-"
    body = [
        f'<h1>Inspection report</h1><p class="muted">Products: {escape(products)} &middot; Period: {period}'
        f" &middot; Filter: {escape(data.filter.describe())} &middot; Generated "
        f"{data.generated_at:%Y-%m-%d %H:%M} UTC by Inspector {__version__}</p>"
    ]
    if data.empty:
        body.append(f"<h2>No inspections</h2><p>No inspection matches {escape(data.filter.describe())}.</p>")
    else:
        body += [
            "<h2>Key figures</h2>",
            _kpi_cards(k),
            "<h2>Recipes and models</h2>",
            _recipes_table(data),
            "<h2>Defects by class</h2>",
            pareto_svg(data.defects_by_class),
            f"<h2>Fail rate per {data.bucket}</h2>",
            rate_svg(data.rate_over_time, bucket=data.bucket),
        ]
        for title, section in per_recipe:
            body += [f"<h2>{escape(title)}</h2>", _kpi_cards(section.kpis), pareto_svg(section.defects_by_class)]
        body += ["<h2>Rejects</h2>", _rejects_table(data)]
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Inspection report</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
