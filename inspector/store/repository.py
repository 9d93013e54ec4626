"""Reading and writing results: small functions over a session, no hidden state."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from inspector.engine.types import InspectionResult, ModelIdentity
from inspector.recipe.io import dump_recipe, recipe_hash
from inspector.recipe.model import Recipe
from inspector.store.models import Defect, Inspection, RecipeSnapshot, Review, Run, utcnow


@dataclass(frozen=True)
class InspectionRecord:
    """Everything one inspection row needs, gathered off the inference thread."""

    run_id: int
    recipe_id: int
    product: str
    image_path: str
    image_sha256: str | None
    result: InspectionResult
    inspected_at: datetime
    overlay_path: str | None = None
    crop_paths: tuple[str | None, ...] = ()


def recipe_snapshot(session: Session, recipe: Recipe) -> int:
    """Id of the stored copy of this exact recipe text, stored now if new."""
    digest = recipe_hash(recipe)
    found = session.scalar(select(RecipeSnapshot.id).where(RecipeSnapshot.sha256 == digest))
    if found is not None:
        return found
    snapshot = RecipeSnapshot(
        sha256=digest,
        product=recipe.name,
        content=dump_recipe(recipe),
        source_path=str(recipe.source) if recipe.source else None,
    )
    session.add(snapshot)
    session.flush()
    return snapshot.id


def start_run(
    session: Session, *, recipe_id: int, model: ModelIdentity, station: str, source: str, settings: dict
) -> int:
    run = Run(
        recipe_id=recipe_id,
        station=station,
        source=source,
        settings=settings,
        model_name=model.name,
        model_sha256=model.sha256,
    )
    session.add(run)
    session.flush()
    return run.id


def finish_run(session: Session, run_id: int, status: str) -> None:
    session.execute(update(Run).where(Run.id == run_id).values(status=status, finished_at=utcnow()))


def inspected_images(session: Session, *, recipe_sha256: str, model_sha256: str) -> set[str]:
    """Content hashes of images already inspected with this recipe and model."""
    rows = session.scalars(
        select(Inspection.image_sha256).where(
            Inspection.recipe_sha256 == recipe_sha256,
            Inspection.model_sha256 == model_sha256,
            Inspection.image_sha256.is_not(None),
        )
    )
    return set(rows)


def storable_text(text: str) -> str:
    """Text the database can hold. A file name that is not UTF-8 (``caf\xe9.png`` copied
    from an old Windows share) reaches Python with its stray bytes as surrogates, which
    no database encoding takes: they are written as ``\xe9`` escapes, so the row is kept
    and the name's bytes can be told from it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def add_inspections(session: Session, records: Iterable[InspectionRecord]) -> None:
    for record in records:
        result = record.result
        row = Inspection(
            run_id=record.run_id,
            recipe_id=record.recipe_id,
            recipe_sha256=result.recipe_hash,
            model_sha256=result.model.sha256,
            product=record.product,
            image_path=storable_text(record.image_path),
            image_sha256=record.image_sha256,
            width=result.image_size[0] if result.image_size else None,
            height=result.image_size[1] if result.image_size else None,
            verdict=result.verdict,
            error=None if result.error is None else storable_text(result.error),
            defect_count=len(result.findings),
            timings={k: round(v, 3) for k, v in result.timings.items()},
            total_ms=result.total_ms,
            overlay_path=record.overlay_path,
            anomaly_score=result.anomaly_score,
            registration=result.registration,
            inspected_at=record.inspected_at,
        )
        crops = record.crop_paths or (None,) * len(result.findings)
        for finding, crop in zip(result.findings, crops, strict=True):
            x1, y1, x2, y2 = finding.box
            row.defects.append(
                Defect(
                    label=finding.label,
                    score=finding.score,
                    area=finding.area,
                    x1=x1,
                    y1=y1,
                    x2=x2,
                    y2=y2,
                    outline=[[round(float(x), 1), round(float(y), 1)] for x, y in finding.outline],
                    crop_path=crop,
                )
            )
        session.add(row)


def add_review(
    session: Session,
    *,
    inspection_id: int,
    decision: str,
    defect_id: int | None = None,
    operator: str = "",
    note: str = "",
) -> int:
    if decision not in ("confirmed", "false_alarm"):
        raise ValueError(f"review decision must be 'confirmed' or 'false_alarm', got {decision!r}")
    review = Review(inspection_id=inspection_id, defect_id=defect_id, decision=decision, operator=operator, note=note)
    session.add(review)
    session.flush()
    return review.id


def latest_reviews():
    """Subquery (inspection_id, decision) of each reviewed inspection's newest review.

    An operator may change their mind; the last word is the one reports and lists show.
    """
    newest = (
        select(Review.inspection_id, func.max(Review.id).label("review_id")).group_by(Review.inspection_id).subquery()
    )
    return select(Review.inspection_id, Review.decision).join(newest, Review.id == newest.c.review_id).subquery()
