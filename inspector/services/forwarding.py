"""Store and forward: a station's results, written to its own database, copied to a central one.

The station always inspects into its own SQLite file, which never depends on the network
(the outbox). A forwarder copies what is there to the central database in the order it was
stored, in batches, each batch one central transaction; a mark kept in the station's file
says how far it got. When the central server cannot be reached the station goes on, the
results wait, and the next attempt sends them.

Exactly once: every forwarded row carries a key the central database keeps unique (the
image's result key, or one made of the station and the row's local id for frames without
a content hash). A batch committed centrally whose mark was not yet saved (the station
stopped in between) is found there on the next attempt, and skipped.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from inspector.errors import StoreError
from inspector.store.database import Store, database_problem, open_store
from inspector.store.models import (
    Defect,
    DefectPicture,
    ForwardedRun,
    ForwardMark,
    Inspection,
    RecipeSnapshot,
    Review,
    Run,
    Station,
    utcnow,
)

log = logging.getLogger(__name__)

BATCH = 200


@dataclass(frozen=True)
class ForwardState:
    """What an operator is told: whether the central database answers, and what waits."""

    reachable: bool
    waiting: int  # results stored here and not yet there
    problem: str | None = None

    def describe(self) -> str:
        if not self.reachable:
            return (
                f"central database unreachable ({self.problem}); {self.waiting} results kept here, sent when it is back"
            )
        if self.waiting:
            return f"central database: {self.waiting} results waiting to be sent"
        return "central database: up to date"


def _columns(row, skip: set[str]) -> dict:
    """A row's values to copy; times from SQLite (which keeps no zone) said to be UTC, as
    they were stored, so that a server in another zone keeps the same instant."""
    values = {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in skip}
    for name, value in values.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            values[name] = value.replace(tzinfo=timezone.utc)
    return values


class Forwarder:
    """Copies the results of ``local`` to the database at ``central_url``.

    Args:
        local: the station's own open database.
        central_url: the central database (opened, and upgraded if it must be, on first use).
        on_state: called with each new state (reachable or not, what waits), on the
            forwarding thread.
    """

    def __init__(
        self, local: Store, central_url: str, *, on_state: Callable[[ForwardState], None] | None = None
    ) -> None:
        self.local = local
        self.central_url = central_url
        self.on_state = on_state
        self._central: Store | None = None
        self._key: str | None = None
        self._last_state: ForwardState | None = None

    # -- the central side ---------------------------------------------------------------

    def _central_store(self) -> Store:
        if self._central is None:
            self._central = open_store(self.central_url)
            # The URL as shown (no password) names the central database in the marks.
            self._key = hashlib.sha256(self._central.url.encode()).hexdigest()
        return self._central

    def close(self) -> None:
        if self._central is not None:
            self._central.close()
            self._central = None

    # -- one pass -----------------------------------------------------------------------

    def waiting(self) -> int:
        """Results stored here and not yet forwarded (all of them before the first contact)."""
        with self.local.session() as session:
            mark = session.get(ForwardMark, self._key) if self._key else None
            last = mark.last_inspection_id if mark else 0
            return session.scalar(select(func.count(Inspection.id)).where(Inspection.id > last)) or 0

    def forward_once(self, limit: int = BATCH) -> int:
        """Send the next ``limit`` results (and their runs); returns how many were sent.

        Raises:
            StoreError: the central database cannot be reached or refuses the batch.
        """
        central = self._central_store()
        key = self._key
        with self.local.session() as session:
            mark = session.get(ForwardMark, key)
            last = mark.last_inspection_id if mark else 0
            rows = session.scalars(
                select(Inspection)
                .where(Inspection.id > last)
                .order_by(Inspection.id)
                .limit(limit)
                .options(
                    selectinload(Inspection.defects).selectinload(Defect.picture),
                    selectinload(Inspection.run).selectinload(Run.recipe),
                )
            ).all()
            # Runs sent while they were running: their end is sent once they have one.
            open_runs = session.execute(
                select(ForwardedRun, Run)
                .join(Run, Run.id == ForwardedRun.local_run_id)
                .where(ForwardedRun.central == key, ForwardedRun.status == "running")
            ).all()
            finished = [(f, run) for f, run in open_runs if run.status != "running"]
            needed = {row.run_id for row in rows}
            known = {
                f.local_run_id: f
                for f in session.scalars(
                    select(ForwardedRun).where(ForwardedRun.central == key, ForwardedRun.local_run_id.in_(needed))
                )
            }
            stations = {station.name: station for station in session.scalars(select(Station))}
            session.expunge_all()
        try:
            with central.session() as remote, remote.begin():
                run_ids = {f.local_run_id: f.central_run_id for f in known.values()}
                there = set(remote.scalars(select(Run.id).where(Run.id.in_(set(run_ids.values())))))
                # A run the central database no longer has (restored from a backup): made again.
                run_ids = {local: central for local, central in run_ids.items() if central in there}
                new_runs = {}
                for row in rows:
                    if row.run_id not in run_ids:
                        _register(remote, stations.get(row.run.station))
                        run_ids[row.run_id] = _central_run(remote, row.run)
                        new_runs[row.run_id] = row.run.status
                _copy(remote, rows, run_ids)
                for mapping, run in finished:  # a run that ended since its results were sent
                    central_run = remote.get(Run, mapping.central_run_id)
                    if central_run is not None:
                        central_run.status, central_run.finished_at = run.status, run.finished_at
        except SQLAlchemyError as exc:
            raise StoreError(f"{central.url}: {database_problem(exc)}") from exc
        with self.local.transaction("recording what was forwarded") as session:
            if rows:
                mark = session.get(ForwardMark, key) or ForwardMark(central=key)
                mark.last_inspection_id, mark.updated_at = rows[-1].id, utcnow()
                session.merge(mark)
            for local_run, status in new_runs.items():
                session.merge(
                    ForwardedRun(central=key, local_run_id=local_run, central_run_id=run_ids[local_run], status=status)
                )
            for mapping, run in finished:
                session.merge(
                    ForwardedRun(
                        central=key, local_run_id=mapping.local_run_id, central_run_id=mapping.central_run_id,
                        status=run.status,
                    )
                )  # fmt: skip
        return len(rows)

    def forward_reviews(self, limit: int = BATCH) -> int:
        """Send operators' reviews made here of results already sent, in order; returns
        how many. A review goes to the central row of the same result (its key), and a
        review of one defect to the same defect of it."""
        central = self._central_store()
        key = self._key
        with self.local.session() as session:
            mark = session.get(ForwardMark, key)
            if mark is None:
                return 0
            reviews = session.execute(
                select(Review, Inspection.result_key, Inspection.recipe_sha256, Inspection.model_sha256)
                .join(Inspection, Inspection.id == Review.inspection_id)
                .where(Review.id > mark.last_review_id, Inspection.id <= mark.last_inspection_id)
                .order_by(Review.id)
                .limit(limit)
            ).all()
            ordinal = {}  # a reviewed defect's place among its inspection's defects
            for review, *_ in reviews:
                if review.defect_id is not None:
                    ids = session.scalars(
                        select(Defect.id).where(Defect.inspection_id == review.inspection_id).order_by(Defect.id)
                    ).all()
                    ordinal[review.id] = ids.index(review.defect_id) if review.defect_id in ids else None
            session.expunge_all()
        if not reviews:
            return 0
        try:
            with central.session() as remote, remote.begin():
                for review, result_key, recipe, model in reviews:
                    target = remote.scalar(
                        select(Inspection.id).where(
                            Inspection.result_key == result_key,
                            Inspection.recipe_sha256 == recipe,
                            Inspection.model_sha256 == model,
                        )
                    )
                    if target is None:
                        continue  # a result the central database does not keep (a row replaced since)
                    defect = None
                    if ordinal.get(review.id) is not None:
                        ids = remote.scalars(
                            select(Defect.id).where(Defect.inspection_id == target).order_by(Defect.id)
                        ).all()
                        defect = ids[ordinal[review.id]] if ordinal[review.id] < len(ids) else None
                    remote.add(
                        Review(
                            **_columns(review, {"id", "inspection_id", "defect_id"}),
                            inspection_id=target,
                            defect_id=defect,
                        )
                    )
        except SQLAlchemyError as exc:
            raise StoreError(f"{central.url}: {database_problem(exc)}") from exc
        with self.local.transaction("recording what was forwarded") as session:
            mark = session.get(ForwardMark, key)
            mark.last_review_id, mark.updated_at = reviews[-1][0].id, utcnow()
        return len(reviews)

    def start_over(self) -> None:
        """Forget what was sent, so that everything is offered again (after the central
        database was restored from a backup): rows it holds are skipped by their keys."""
        self._central_store()
        with self.local.transaction("forgetting what was forwarded") as session:
            session.execute(delete(ForwardMark).where(ForwardMark.central == self._key))
            session.execute(delete(ForwardedRun).where(ForwardedRun.central == self._key))

    def forward_all(self) -> ForwardState:
        """Send everything that waits, batch by batch; the state it ends in (never raises)."""
        try:
            while self.forward_once():
                pass
            while self.forward_reviews():
                pass
            state = ForwardState(reachable=True, waiting=self.waiting())
        except Exception as exc:  # unreachable, refused, or the station's own file: say it, go on
            if not isinstance(exc, StoreError):
                log.warning("forwarding to the central database failed", exc_info=True)
            self.close()  # a fresh connection next time
            state = ForwardState(reachable=False, waiting=self._waiting_or_unknown(), problem=_short(exc))
        self._tell(state)
        return state

    def _waiting_or_unknown(self) -> int:
        try:
            return self.waiting()
        except Exception:  # the station's own database is what failed
            return -1

    def _tell(self, state: ForwardState) -> None:
        changed = self._last_state is None or (state.reachable, bool(state.waiting)) != (
            self._last_state.reachable,
            bool(self._last_state.waiting),
        )
        self._last_state = state
        if changed and self.on_state is not None:
            self.on_state(state)

    # -- in the background --------------------------------------------------------------

    def run_until(self, stop: threading.Event, *, every: float = 2.0) -> None:
        """Forward every ``every`` seconds until ``stop`` is set, then once more."""
        while not stop.wait(every):
            self.forward_all()
        self.forward_all()

    def start(self, *, every: float = 2.0) -> Callable[[], ForwardState]:
        """Forward on a thread of its own; returns the function that stops it after a last
        pass and says the state it ended in."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run_until, args=(stop,), kwargs={"every": every}, daemon=True)
        thread.start()

        def finish(timeout: float = 60.0) -> ForwardState:
            stop.set()
            thread.join(timeout)  # a last pass; a server that hangs does not hold the station
            if thread.is_alive():
                return ForwardState(reachable=False, waiting=self._waiting_or_unknown(), problem="no answer")
            self.close()
            return self._last_state or ForwardState(reachable=False, waiting=self.waiting(), problem="not tried")

        return finish


def _short(exc: BaseException) -> str:
    return str(exc).split(": ", 1)[-1].splitlines()[0][:200]


def _register(remote: Session, station: Station | None) -> None:
    """The station, as the central database knows it (host, version, when last seen)."""
    if station is None:  # runs stored before stations were registered
        return
    found = remote.scalar(select(Station).where(Station.name == station.name))
    if found is None:
        remote.add(Station(**_columns(station, {"id"})))
        remote.flush()
    else:
        found.host, found.inspector_version = station.host, station.inspector_version
        found.last_seen = max(_columns(found, set())["last_seen"], _columns(station, set())["last_seen"])


def _central_run(remote: Session, run: Run) -> int:
    """The central row of a station's run: found (a batch sent before the station could note
    it), or made with its recipe snapshot."""
    started = _columns(run, set())["started_at"]
    found = remote.scalar(select(Run.id).where(Run.station == run.station, Run.started_at == started))
    if found is not None:
        return found
    recipe = run.recipe
    recipe_id = remote.scalar(select(RecipeSnapshot.id).where(RecipeSnapshot.sha256 == recipe.sha256))
    if recipe_id is None:
        snapshot = RecipeSnapshot(**_columns(recipe, {"id"}))
        remote.add(snapshot)
        remote.flush()
        recipe_id = snapshot.id
    central = Run(**_columns(run, {"id", "recipe_id"}), recipe_id=recipe_id)
    remote.add(central)
    remote.flush()
    return central.id


def _copy(remote: Session, rows: list[Inspection], run_ids: dict[int, int]) -> None:
    """Add the rows the central database does not hold yet, in their order."""
    keyed = {row.id: row.result_key or _frame_key(row) for row in rows}
    present = set()
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        present |= set(
            remote.execute(
                select(Inspection.result_key, Inspection.recipe_sha256, Inspection.model_sha256).where(
                    Inspection.result_key.in_({keyed[row.id] for row in chunk})
                )
            ).all()
        )
    recipe_of_run = {}
    for row in rows:
        if (keyed[row.id], row.recipe_sha256, row.model_sha256) in present:
            continue  # sent before (the mark not saved), or another station stored the same image first
        central_run = run_ids[row.run_id]
        if central_run not in recipe_of_run:
            recipe_of_run[central_run] = remote.get(Run, central_run).recipe_id
        # As on the station: a file that changed after an ERROR replaces that ERROR (the
        # station deleted its row; the copy sent before goes the same way here).
        remote.execute(
            delete(Inspection).where(
                Inspection.run_id == central_run, Inspection.image_path == row.image_path, Inspection.verdict == "ERROR"
            )
        )
        copy = Inspection(
            **_columns(row, {"id", "run_id", "recipe_id", "result_key"}),
            run_id=central_run,
            recipe_id=recipe_of_run[central_run],
            result_key=keyed[row.id],
        )
        copy.defects = [
            Defect(
                **_columns(d, {"id", "inspection_id"}),
                picture=DefectPicture(jpeg=d.picture.jpeg) if d.picture is not None else None,
            )
            for d in row.defects
        ]
        remote.add(copy)
        remote.flush()  # in the station's order


def _frame_key(row: Inspection) -> str:
    """A key for a frame without a content hash (a camera's): the station and its local id."""
    station = hashlib.sha256(row.run.station.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"frame:{station}:{row.id}"
