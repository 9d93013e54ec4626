"""The questions asked of stored results: reports, and History in the GUI.

The one place that writes queries over the store's models, so that no face (the GUI,
the command line) needs SQL. A report is gathered with aggregate queries, nothing loads
every row: KPIs, defects by class, the fail rate over time and the recipes used are
GROUP BY queries; only the rejects table fetches rows, and it is capped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

import numpy as np
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from inspector.errors import StoreError
from inspector.store.models import Defect, DefectPicture, Inspection, RecipeSnapshot, Review, Run
from inspector.store.repository import add_review

REJECTS_CAP = 200
Decision = Literal["confirmed", "false_alarm"]


def part_reviews():
    """Subquery (inspection_id, decision) of each reviewed part's newest review of the
    whole part.

    An operator may change their mind; the last word is the one reports and lists show.
    A review of one of its defects says nothing of the part as a whole, and is left out.
    """
    whole = Review.defect_id.is_(None)
    newest = (
        select(Review.inspection_id, func.max(Review.id).label("review_id"))
        .where(whole)
        .group_by(Review.inspection_id)
        .subquery()
    )
    return select(Review.inspection_id, Review.decision).join(newest, Review.id == newest.c.review_id).subquery()


@dataclass(frozen=True)
class ReportFilter:
    product: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    verdict: str | None = None
    run_id: int | None = None
    recipe_sha256: str | None = None
    station: str | None = None

    def apply(self, query: Select) -> Select:
        if self.product:
            query = query.where(Inspection.product == self.product)
        if self.since:
            query = query.where(Inspection.inspected_at >= self.since)
        if self.until:
            query = query.where(Inspection.inspected_at < self.until)
        if self.verdict:
            query = query.where(Inspection.verdict == self.verdict)
        if self.run_id is not None:
            query = query.where(Inspection.run_id == self.run_id)
        if self.recipe_sha256:
            query = query.where(Inspection.recipe_sha256 == self.recipe_sha256)
        if self.station:
            query = query.where(Inspection.run_id.in_(select(Run.id).where(Run.station == self.station)))
        return query

    def describe(self) -> str:
        parts = []
        if self.product:
            parts.append(f"product {self.product}")
        if self.since or self.until:
            since = self.since.strftime("%Y-%m-%d %H:%M") if self.since else "start"
            until = self.until.strftime("%Y-%m-%d %H:%M") if self.until else "now"
            parts.append(f"{since} to {until}")
        if self.verdict:
            parts.append(f"verdict {self.verdict}")
        if self.run_id is not None:
            parts.append(f"run {self.run_id}")
        if self.station:
            parts.append(f"station {self.station}")
        return ", ".join(parts) or "all inspections"


@dataclass(frozen=True)
class Kpis:
    inspected: int
    passed: int
    failed: int
    errors: int
    confirmed: int
    false_alarms: int
    first: datetime | None
    last: datetime | None

    @property
    def yield_percent(self) -> float | None:
        judged = self.passed + self.failed
        return 100.0 * self.passed / judged if judged else None


@dataclass(frozen=True)
class RecipeUse:
    product: str
    recipe_sha256: str
    model_names: tuple[str, ...]
    model_sha256s: tuple[str, ...]
    stations: tuple[str, ...]
    inspected: int
    failed: int


@dataclass(frozen=True)
class Reject:
    inspection_id: int
    inspected_at: datetime
    product: str
    image_path: str
    overlay_path: str | None
    labels: tuple[str, ...]
    areas: tuple[float, ...]
    review: str  # "confirmed", "false alarm" or "not reviewed"
    # Small JPEGs of its defects kept in the database (None where none was kept): shown
    # beside the frame, and instead of it where the station's files are out of reach.
    crops: tuple[bytes | None, ...] = ()


@dataclass
class ReportData:
    filter: ReportFilter
    generated_at: datetime
    kpis: Kpis
    recipes: list[RecipeUse] = field(default_factory=list)
    defects_by_class: list[tuple[str, int]] = field(default_factory=list)
    rate_over_time: list[tuple[datetime, int, int]] = field(default_factory=list)  # bucket, inspected, failed
    bucket: str = "day"
    rejects: list[Reject] = field(default_factory=list)
    rejects_left_out: int = 0

    @property
    def empty(self) -> bool:
        return self.kpis.inspected == 0


def _kpis(session: Session, flt: ReportFilter) -> Kpis:
    row = session.execute(
        flt.apply(
            select(
                func.count(Inspection.id),
                func.sum(case((Inspection.verdict == "PASS", 1), else_=0)),
                func.sum(case((Inspection.verdict == "FAIL", 1), else_=0)),
                func.sum(case((Inspection.verdict == "ERROR", 1), else_=0)),
                func.min(Inspection.inspected_at),
                func.max(Inspection.inspected_at),
            )
        )
    ).one()
    reviewed = part_reviews()
    reviews = dict(
        session.execute(
            flt.apply(
                select(reviewed.c.decision, func.count())
                .select_from(Inspection)
                .join(reviewed, reviewed.c.inspection_id == Inspection.id)
            ).group_by(reviewed.c.decision)
        ).all()
    )
    return Kpis(
        row[0] or 0,
        row[1] or 0,
        row[2] or 0,
        row[3] or 0,
        reviews.get("confirmed", 0),
        reviews.get("false_alarm", 0),
        row[4],
        row[5],
    )


def _recipes(session: Session, flt: ReportFilter) -> list[RecipeUse]:
    rows = session.execute(
        flt.apply(
            select(
                RecipeSnapshot.product,
                RecipeSnapshot.sha256,
                Run.model_name,
                Run.model_sha256,
                Run.station,
                func.count(Inspection.id),
                func.sum(case((Inspection.verdict == "FAIL", 1), else_=0)),
            )
            .join(Run, Inspection.run_id == Run.id)
            .join(RecipeSnapshot, Inspection.recipe_id == RecipeSnapshot.id)
            .group_by(RecipeSnapshot.product, RecipeSnapshot.sha256, Run.model_name, Run.model_sha256, Run.station)
        )
    ).all()
    merged: dict[tuple[str, str], dict] = {}
    for product, sha, model, model_sha, station, count, failed in rows:
        entry = merged.setdefault((product, sha), {"models": [], "shas": [], "stations": [], "n": 0, "f": 0})
        for key, value in (("models", model), ("shas", model_sha), ("stations", station)):
            if value not in entry[key]:
                entry[key].append(value)
        entry["n"] += count
        entry["f"] += failed or 0
    return [
        RecipeUse(p, s, tuple(e["models"]), tuple(e["shas"]), tuple(e["stations"]), e["n"], e["f"])
        for (p, s), e in sorted(merged.items())
    ]


def _defects_by_class(session: Session, flt: ReportFilter) -> list[tuple[str, int]]:
    rows = session.execute(
        flt.apply(
            select(Defect.label, func.count(Defect.id))
            .join(Inspection, Defect.inspection_id == Inspection.id)
            .group_by(Defect.label)
            .order_by(func.count(Defect.id).desc())
        )
    ).all()
    return [(label, count) for label, count in rows]


def _bucket_for(first: datetime | None, last: datetime | None) -> str:
    if first is None or last is None:
        return "day"
    span = last - first
    return "hour" if span <= timedelta(days=2) else ("day" if span <= timedelta(days=120) else "month")


def _rate_over_time(session: Session, flt: ReportFilter, bucket: str) -> list[tuple[datetime, int, int]]:
    fmt = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "month": "%Y-%m"}[bucket]
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        key = func.strftime(fmt, Inspection.inspected_at)
    else:  # PostgreSQL and friends
        key = func.to_char(
            Inspection.inspected_at, {"hour": "YYYY-MM-DD HH24:00", "day": "YYYY-MM-DD", "month": "YYYY-MM"}[bucket]
        )
    rows = session.execute(
        flt.apply(
            select(key, func.count(Inspection.id), func.sum(case((Inspection.verdict == "FAIL", 1), else_=0)))
            .group_by(key)
            .order_by(key)
        )
    ).all()
    parse = {"hour": "%Y-%m-%d %H:%M", "day": "%Y-%m-%d", "month": "%Y-%m"}[bucket]
    return [(datetime.strptime(k, parse), n, f or 0) for k, n, f in rows if k]


def _rejects(session: Session, flt: ReportFilter, cap: int) -> tuple[list[Reject], int]:
    base = flt.apply(select(Inspection.id).where(Inspection.verdict == "FAIL"))
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    decided = part_reviews()
    rows = session.execute(
        flt.apply(
            select(
                Inspection.id,
                Inspection.inspected_at,
                Inspection.product,
                Inspection.image_path,
                Inspection.overlay_path,
                decided.c.decision,
            )
            .outerjoin(decided, decided.c.inspection_id == Inspection.id)
            .where(Inspection.verdict == "FAIL")
            .order_by(Inspection.inspected_at.desc())
            .limit(cap)
        )
    ).all()
    ids = [r[0] for r in rows]
    labels: dict[int, list[tuple[str, float, bytes | None]]] = {i: [] for i in ids}
    if ids:
        for inspection_id, label, area, jpeg in session.execute(
            select(Defect.inspection_id, Defect.label, Defect.area, DefectPicture.jpeg)
            .outerjoin(DefectPicture, DefectPicture.defect_id == Defect.id)
            .where(Defect.inspection_id.in_(ids))
            .order_by(Defect.id)
        ):
            labels[inspection_id].append((label, area, jpeg))
    names = {"confirmed": "confirmed", "false_alarm": "false alarm", None: "not reviewed"}
    rejects = [
        Reject(
            i,
            at,
            product,
            path,
            overlay,
            tuple(lb for lb, _, _ in labels[i]),
            tuple(a for _, a, _ in labels[i]),
            names.get(decision, decision),
            tuple(jpeg for _, _, jpeg in labels[i]),
        )
        for i, at, product, path, overlay, decision in rows
    ]
    return rejects, max(0, total - len(rejects))


def gather(session: Session, flt: ReportFilter, *, rejects_cap: int = REJECTS_CAP) -> ReportData:
    """Everything a report shows for the inspections that match ``flt``."""
    kpis = _kpis(session, flt)
    bucket = _bucket_for(kpis.first, kpis.last)
    rejects, left_out = _rejects(session, flt, rejects_cap)
    return ReportData(
        filter=flt,
        generated_at=datetime.now(timezone.utc),
        kpis=kpis,
        recipes=_recipes(session, flt),
        defects_by_class=_defects_by_class(session, flt),
        rate_over_time=_rate_over_time(session, flt, bucket),
        bucket=bucket,
        rejects=rejects,
        rejects_left_out=left_out,
    )


# -- History: what the GUI lists and shows -----------------------------------------------

HISTORY_LIMIT = 500  # newest first; a report covers the rest


@dataclass(frozen=True)
class HistoryRow:
    """One stored inspection as History lists it."""

    inspection_id: int
    inspected_at: datetime
    product: str
    verdict: str
    defect_count: int
    error: str | None
    review: str | None  # the latest decision: "confirmed", "false_alarm" or None
    anomaly_score: float | None  # a taught recipe's score of the image


@dataclass(frozen=True)
class InspectionDetail:
    """One stored inspection as History shows it: where its pictures are, its defects,
    and the newest review of the part and of each defect."""

    inspection_id: int
    image_path: str
    overlay_path: str | None
    verdict: str
    error: str | None
    outlines: tuple  # (K, 2) float32 polygons, one per defect
    labels: tuple[str, ...]  # "label score", one per defect
    defect_ids: tuple[int, ...] = ()  # one per defect, in the order of ``outlines``
    defect_reviews: tuple[str | None, ...] = ()  # the newest decision on each defect, or None
    review: str | None = None  # the newest decision on the part as a whole, or None


def history(store, flt: ReportFilter, *, limit: int = HISTORY_LIMIT) -> tuple[list[str], list[HistoryRow]]:
    """The products in the database, and the newest inspections ``flt`` keeps.

    Raises:
        StoreError: the database cannot be read (locked, damaged), naming it.
    """
    with store.transaction("History cannot be read") as session:
        products = sorted(session.scalars(select(Inspection.product).distinct()))
        decided = part_reviews()
        rows = session.execute(
            flt.apply(
                select(
                    Inspection.id,
                    Inspection.inspected_at,
                    Inspection.product,
                    Inspection.verdict,
                    Inspection.defect_count,
                    Inspection.error,
                    decided.c.decision,
                    Inspection.anomaly_score,
                )
                .outerjoin(decided, decided.c.inspection_id == Inspection.id)
                .order_by(Inspection.inspected_at.desc())
                .limit(limit)
            )
        ).all()
    return products, [HistoryRow(*row) for row in rows]


def inspection_detail(store, inspection_id: int) -> InspectionDetail:
    """One inspection with its defects' outlines and reviews.

    Raises:
        StoreError: it cannot be read, or there is no such inspection.
    """
    with store.transaction(f"inspection #{inspection_id} cannot be read") as session:
        inspection = session.get(Inspection, inspection_id)
        if inspection is None:
            raise StoreError(f"{store.url}: there is no inspection #{inspection_id}")
        defects = session.scalars(select(Defect).where(Defect.inspection_id == inspection_id).order_by(Defect.id)).all()
        decided: dict[int | None, str] = {}  # defect id (None: the whole part) -> newest decision
        for defect_id, decision in session.execute(
            select(Review.defect_id, Review.decision).where(Review.inspection_id == inspection_id).order_by(Review.id)
        ):
            decided[defect_id] = decision
        return InspectionDetail(
            inspection_id,
            inspection.image_path,
            inspection.overlay_path,
            inspection.verdict,
            inspection.error,
            tuple(np.array(d.outline, np.float32).reshape(-1, 2) for d in defects),
            tuple(f"{d.label} {d.score:.2f}" for d in defects),
            tuple(d.id for d in defects),
            tuple(decided.get(d.id) for d in defects),
            decided.get(None),
        )


def record_review(
    store,
    inspection_id: int,
    decision: Decision,
    *,
    defect_id: int | None = None,
    operator: str = "",
    note: str = "",
) -> None:
    """Store an operator's review of an inspection, or of one of its defects.

    Args:
        decision: "confirmed" or "false_alarm".
        defect_id: the defect reviewed; None reviews the part as a whole.
        operator: who reviewed it.
        note: what they had to say, if anything.

    Raises:
        StoreError: there is no such inspection, or no such defect of it, or it cannot
            be written (a locked database), naming the database.
    """
    with store.transaction(f"inspection #{inspection_id} was not reviewed") as session:
        if session.get(Inspection, inspection_id) is None:
            raise StoreError(f"{store.url}: there is no inspection #{inspection_id}; it was not reviewed")
        if defect_id is not None:
            defect = session.get(Defect, defect_id)
            if defect is None or defect.inspection_id != inspection_id:
                raise StoreError(
                    f"{store.url}: inspection #{inspection_id} has no defect #{defect_id}; it was not reviewed"
                )
        add_review(
            session,
            inspection_id=inspection_id,
            decision=decision,
            defect_id=defect_id,
            operator=operator.strip(),
            note=note.strip(),
        )


def run_numbers(store, run_id: int) -> tuple[bool, int | None, int | None]:
    """Whether run ``run_id`` is in the database, and the first and last run numbers it holds."""
    with store.transaction("the runs cannot be read") as session:
        if session.get(Run, run_id) is not None:
            return True, None, None
        first, last = session.execute(select(func.min(Run.id), func.max(Run.id))).one()
    return False, first, last


def station_names(session: Session) -> list[str]:
    """The stations that have stored results here, by name (for filters)."""
    return sorted(set(session.scalars(select(Run.station).distinct())))
