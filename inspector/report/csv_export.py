"""CSV for other systems: one row per inspection, and a second file with one row per defect.

Rows are streamed from the database in chunks; column names are stable (see README).
"""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from inspector.report.query import ReportFilter, part_reviews
from inspector.store.models import Defect, Inspection, Run

INSPECTION_COLUMNS = (
    "inspection_id",
    "run_id",
    "inspected_at",
    "product",
    "verdict",
    "error",
    "defect_count",
    "image_path",
    "image_sha256",
    "width",
    "height",
    "recipe_sha256",
    "model_sha256",
    "total_ms",
    "overlay_path",
    "review",
    "anomaly_score",
    "registration",
    "station",
)
DEFECT_COLUMNS = (
    "defect_id",
    "inspection_id",
    "label",
    "score",
    "area_px",
    "x1",
    "y1",
    "x2",
    "y2",
    "crop_path",
)
_CHUNK = 2000


def _cell(value) -> object:
    """A value as a CSV cell: empty for None; text that a spreadsheet would run as a
    formula (starting with = + - @, a tab or a carriage return) is quoted with a leading
    apostrophe, as OWASP advises. Numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def defects_path(path: Path) -> Path:
    """Where the per-defect file goes beside ``report.csv``: ``report-defects.csv``."""
    return path.with_name(f"{path.stem}-defects{path.suffix or '.csv'}")


def write_csv(session: Session, flt: ReportFilter, path: Path) -> tuple[Path, Path]:
    """Write both CSV files; returns their paths."""
    decision = part_reviews()
    inspections = flt.apply(
        select(
            Inspection.id,
            Inspection.run_id,
            Inspection.inspected_at,
            Inspection.product,
            Inspection.verdict,
            Inspection.error,
            Inspection.defect_count,
            Inspection.image_path,
            Inspection.image_sha256,
            Inspection.width,
            Inspection.height,
            Inspection.recipe_sha256,
            Inspection.model_sha256,
            Inspection.total_ms,
            Inspection.overlay_path,
            decision.c.decision,
            Inspection.anomaly_score,
            Inspection.registration,
            Run.station,
        )
        .join(Run, Run.id == Inspection.run_id)
        .outerjoin(decision, decision.c.inspection_id == Inspection.id)
        .order_by(Inspection.id)
    ).execution_options(yield_per=_CHUNK)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(INSPECTION_COLUMNS)
        for row in session.execute(inspections):
            values = list(row)
            values[2] = values[2].isoformat() if values[2] else ""
            values[13] = round(values[13] or 0.0, 2)
            values[15] = values[15] or ""
            values[16] = "" if values[16] is None else round(values[16], 4)
            writer.writerow([_cell(v) for v in values])

    defects = flt.apply(
        select(
            Defect.id,
            Defect.inspection_id,
            Defect.label,
            Defect.score,
            Defect.area,
            Defect.x1,
            Defect.y1,
            Defect.x2,
            Defect.y2,
            Defect.crop_path,
        )
        .join(Inspection, Defect.inspection_id == Inspection.id)
        .order_by(Defect.id)
    ).execution_options(yield_per=_CHUNK)
    second = defects_path(path)
    with second.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(DEFECT_COLUMNS)
        for row in session.execute(defects):
            values = list(row)
            for k in range(3, 9):
                values[k] = round(values[k], 2)
            writer.writerow([_cell(v) for v in values])
    return path, second
