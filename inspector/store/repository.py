"""Reading and writing results: small functions over a session, no hidden state."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from inspector.engine.types import ERROR, InspectionResult, ModelIdentity
from inspector.recipe.io import dump_recipe, recipe_hash
from inspector.recipe.model import Recipe
from inspector.store.models import (
    OPERATOR_NAME_LENGTH,
    Defect,
    DefectPicture,
    Inspection,
    RecipeSnapshot,
    Review,
    Run,
    Station,
    utcnow,
)


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
    crop_jpegs: tuple[bytes | None, ...] = ()  # small pictures of the defects, kept in the row
    result_key: str | None = None  # see ``result_key``
    # The image's file changed after this run stored an ERROR for it (a writer pausing
    # longer than the hot folder's settling time): this row replaces that one.
    replaces_error: bool = False

    @property
    def identity(self) -> tuple[str | None, str, str]:
        """What the database keeps unique (with a key): one row per result key, recipe and model."""
        return (self.result_key, self.result.recipe_hash, self.result.model.sha256)


def _name_digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def result_key(image_sha256: str | None, name: str, verdict: str, *, forced_as: str | None = None) -> str:
    """The key a result is stored under, unique per recipe and model (see ``Inspection``).

    A judged image is its content: the same picture again is the same result. An ERROR is
    its content and file name: empty files, or copies of one broken file, each get a
    row. A forced re-inspection adds its run's token, beside the earlier result. A frame
    without a content hash (a camera's) is a result of its own: a random key, unique in
    every database it is forwarded to.
    """
    if image_sha256 is None:
        return f"frame:{uuid.uuid4().hex}"
    key = f"{image_sha256}/{_name_digest(name)}" if verdict == ERROR else image_sha256
    return key if forced_as is None else f"{key}@{forced_as}"


@dataclass
class InspectedBefore:
    """What a recipe and model have already inspected: judged images by content (with
    their verdict, for sorting a file that was stored but not yet moved), ERRORs by
    content and name."""

    judged: dict[str, str] = field(default_factory=dict)  # content hash -> PASS or FAIL
    errors: set[str] = field(default_factory=set)  # result keys of ERRORs

    def verdict(self, image_sha256: str | None, name: str) -> str | None:
        """The stored verdict of this content under this name, or None: not inspected yet."""
        if image_sha256 is None:  # a frame: every one is new
            return None
        if image_sha256 in self.judged:
            return self.judged[image_sha256]
        return ERROR if result_key(image_sha256, name, ERROR) in self.errors else None

    def add(self, image_sha256: str | None, name: str, verdict: str) -> None:
        if image_sha256 is None:
            return
        if verdict == ERROR:
            self.errors.add(result_key(image_sha256, name, ERROR))
        else:
            self.judged[image_sha256] = verdict


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


def register_station(session: Session, *, name: str, host: str, version: str) -> None:
    """Record that station ``name`` (on ``host``, running Inspector ``version``) writes here."""
    station = session.scalar(select(Station).where(Station.name == name))
    if station is None:
        session.add(Station(name=name, host=host[:255], inspector_version=version[:40]))
        session.flush()  # a second station registering the same name at once: IntegrityError here
    else:
        station.host, station.inspector_version, station.last_seen = host[:255], version[:40], utcnow()


def start_run(
    session: Session,
    *,
    recipe_id: int,
    model: ModelIdentity,
    station: str,
    source: str,
    settings: dict,
    recipe_version: int | None = None,
) -> int:
    run = Run(
        recipe_version=recipe_version,
        recipe_id=recipe_id,
        station=station,
        source=storable_text(source),
        settings=settings,
        model_name=model.name[:200],  # a file name; the model is identified by its hash
        model_sha256=model.sha256,
    )
    session.add(run)
    session.flush()
    return run.id


def finish_run(session: Session, run_id: int, status: str) -> None:
    session.execute(update(Run).where(Run.id == run_id).values(status=status, finished_at=utcnow()))


def inspected_before(session: Session, *, recipe_sha256: str, model_sha256: str) -> InspectedBefore:
    """Images this recipe and model have already inspected (a killed run resumes after them)."""
    found = InspectedBefore()
    rows = session.execute(
        select(Inspection.image_sha256, Inspection.verdict, Inspection.result_key).where(
            Inspection.recipe_sha256 == recipe_sha256,
            Inspection.model_sha256 == model_sha256,
            Inspection.image_sha256.is_not(None),
        )
    )
    for sha, verdict, key in rows:
        if verdict != ERROR:
            found.judged[sha] = verdict
        elif key is not None:
            found.errors.add(key.partition("@")[0])
    return found


def already_stored(session: Session, records: Iterable[InspectionRecord]) -> set[tuple[str | None, str, str]]:
    """The identities among ``records`` that the database holds already (another
    station or run stored the same image first)."""
    keys = {record.result_key for record in records if record.result_key is not None}
    if not keys:
        return set()
    rows = session.execute(
        select(Inspection.result_key, Inspection.recipe_sha256, Inspection.model_sha256).where(
            Inspection.result_key.in_(keys)
        )
    )
    return {tuple(row) for row in rows}


def storable_text(text: str) -> str:
    """Text the database can hold. A file name that is not UTF-8 (``caf\xe9.png`` copied
    from an old Windows share) reaches Python with its stray bytes as surrogates, which
    no database encoding takes: they are written as ``\xe9`` escapes, so the row is kept
    and the name's bytes can be told from it."""
    text = text.replace("\x00", "\\x00")  # PostgreSQL text cannot hold NUL
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def add_inspections(session: Session, records: Iterable[InspectionRecord]) -> None:
    for record in records:
        result = record.result
        if record.replaces_error:
            session.execute(
                delete(Inspection).where(
                    Inspection.run_id == record.run_id,
                    Inspection.image_path == storable_text(record.image_path),
                    Inspection.verdict == ERROR,
                )
            )
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
            result_key=record.result_key,
        )
        crops = record.crop_paths or (None,) * len(result.findings)
        jpegs = record.crop_jpegs or (None,) * len(result.findings)
        for finding, crop, jpeg in zip(result.findings, crops, jpegs, strict=True):
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
                    picture=DefectPicture(jpeg=jpeg) if jpeg else None,
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
    if len(operator) > OPERATOR_NAME_LENGTH or "\x00" in operator + note:
        raise ValueError(f"operator name: at most {OPERATOR_NAME_LENGTH} characters, without NUL")
    review = Review(inspection_id=inspection_id, defect_id=defect_id, decision=decision, operator=operator, note=note)
    session.add(review)
    session.flush()
    return review.id
