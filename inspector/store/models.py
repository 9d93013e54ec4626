"""The results database schema (SQLAlchemy 2.0). Changes go through Alembic in ``migrations/``,
and a
new revision becomes ``SCHEMA_REVISION`` in ``database.py``."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from inspector.recipe.checks import LABEL_LENGTH, PRODUCT_NAME_LENGTH

STATION_NAME_LENGTH = 200
OPERATOR_NAME_LENGTH = 100


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class RecipeSnapshot(Base):
    """The exact recipe text an inspection used, stored once per content hash."""

    __tablename__ = "recipe_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    product: Mapped[str] = mapped_column(String(PRODUCT_NAME_LENGTH), index=True)
    source_path: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Run(Base):
    """One invocation of the inspection loop over some sources."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipe_id: Mapped[int] = mapped_column(ForeignKey("recipe_snapshots.id"))
    station: Mapped[str] = mapped_column(String(STATION_NAME_LENGTH))
    source: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    model_name: Mapped[str] = mapped_column(String(200))
    model_sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20), default="running")  # running, finished, stopped, failed
    # The published version the recipe was pulled as (with the snapshot's product), if it was.
    recipe_version: Mapped[int | None] = mapped_column(Integer)

    recipe: Mapped[RecipeSnapshot] = relationship()


class Inspection(Base):
    """One image's result: exactly one row per inspected image.

    ``result_key`` makes "one row per image, recipe and model" the database's own rule,
    so two stations (or two runs) on one database cannot both store the same image: the
    second writer finds the row and skips. It is the image's content hash for a judged
    image; content and file name for an ERROR (empty or broken files share content,
    and each file gets its own row); with the run added for a forced re-inspection. NULL
    (no rule) for frames without a hash, and for duplicates stored before the rule.
    """

    __tablename__ = "inspections"
    __table_args__ = (
        Index("ix_inspections_identity", "image_sha256", "recipe_sha256", "model_sha256"),
        Index("uq_inspections_result", "result_key", "recipe_sha256", "model_sha256", unique=True),
        # Ids never reused (SQLite reuses the largest after a delete): a station's forward
        # mark counts on them (services/forwarding.py).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    recipe_id: Mapped[int] = mapped_column(ForeignKey("recipe_snapshots.id"))
    recipe_sha256: Mapped[str] = mapped_column(String(64))
    model_sha256: Mapped[str] = mapped_column(String(64))
    product: Mapped[str] = mapped_column(String(PRODUCT_NAME_LENGTH), index=True)
    image_path: Mapped[str] = mapped_column(Text)
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(5), index=True)  # PASS, FAIL, ERROR
    error: Mapped[str | None] = mapped_column(Text)
    defect_count: Mapped[int] = mapped_column(Integer, default=0)
    timings: Mapped[dict] = mapped_column(JSON, default=dict)
    total_ms: Mapped[float] = mapped_column(Float, default=0.0)
    overlay_path: Mapped[str | None] = mapped_column(Text)
    inspected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    # A taught recipe's score of the image (its anomaly map's peak on the part), to sort
    # and sweep by; how the image was registered (see engine/stages/register.py).
    anomaly_score: Mapped[float | None] = mapped_column(Float, index=True)
    registration: Mapped[str | None] = mapped_column(String(40))
    result_key: Mapped[str | None] = mapped_column(String(120))

    defects: Mapped[list[Defect]] = relationship(back_populates="inspection", cascade="all, delete-orphan")
    run: Mapped[Run] = relationship()


class Defect(Base):
    __tablename__ = "defects"

    id: Mapped[int] = mapped_column(primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(LABEL_LENGTH), index=True)
    score: Mapped[float] = mapped_column(Float)
    area: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    outline: Mapped[list] = mapped_column(JSON, default=list)
    crop_path: Mapped[str | None] = mapped_column(Text)

    inspection: Mapped[Inspection] = relationship(back_populates="defects")
    picture: Mapped[DefectPicture | None] = relationship(cascade="all, delete-orphan", uselist=False)


class DefectPicture(Base):
    """A small JPEG of a defect, kept with its row: a report made from another machine
    (a central database) shows it where the station's image files are out of reach."""

    __tablename__ = "defect_pictures"

    defect_id: Mapped[int] = mapped_column(ForeignKey("defects.id", ondelete="CASCADE"), primary_key=True)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)


class Review(Base):
    """An operator's decision on a flagged part or one of its defects."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"), index=True)
    defect_id: Mapped[int | None] = mapped_column(ForeignKey("defects.id", ondelete="CASCADE"))
    decision: Mapped[str] = mapped_column(String(20))  # confirmed, false_alarm
    operator: Mapped[str] = mapped_column(String(OPERATOR_NAME_LENGTH), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Station(Base):
    """A station that has written to this database: registered by its first run, seen
    again by each later one."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(STATION_NAME_LENGTH), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    inspector_version: Mapped[str] = mapped_column(String(40))
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ForwardMark(Base):
    """How far a station's results have been forwarded to a central database: every
    inspection up to ``last_inspection_id`` of this (local) database is there, and every
    review up to ``last_review_id``."""

    __tablename__ = "forward_marks"

    central: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the URL, no password
    last_inspection_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_review_id: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class ForwardedRun(Base):
    """A local run's row in a central database, and the status forwarded with it."""

    __tablename__ = "forwarded_runs"

    central: Mapped[str] = mapped_column(String(64), primary_key=True)
    local_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    central_run_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))


class PublishedRecipe(Base):
    """A recipe published for stations to pull: a numbered version per product, its YAML
    as published (file references by plain name), its files in ``published_files``."""

    __tablename__ = "published_recipes"
    __table_args__ = (UniqueConstraint("product", "version", name="uq_published_recipes_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product: Mapped[str] = mapped_column(String(PRODUCT_NAME_LENGTH), index=True)
    version: Mapped[int] = mapped_column(Integer)
    recipe_sha256: Mapped[str] = mapped_column(String(64), index=True)  # the recipe hash results record
    content: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_by: Mapped[str] = mapped_column(String(OPERATOR_NAME_LENGTH), default="")
    note: Mapped[str] = mapped_column(Text, default="")

    files: Mapped[list[PublishedFile]] = relationship(cascade="all, delete-orphan", order_by="PublishedFile.name")


class PublishedFile(Base):
    """A file a published recipe names: its reference image, its taught normal model, an
    exemplar image."""

    __tablename__ = "published_files"

    published_id: Mapped[int] = mapped_column(ForeignKey("published_recipes.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
