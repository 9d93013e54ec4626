"""Opening the results database: SQLite by default (WAL, busy timeout), any SQLAlchemy URL.

A new database gets the current schema straight from ``models.py`` and is stamped with
its Alembic revision; an older one is upgraded on open by the migrations in
``migrations/`` (installed with the package); a newer one is refused rather than written
with the wrong schema. A database already at the current revision is opened without
importing Alembic, which costs about half a second of every start (its dialect modules).
A test holds the models and the migrations together: a new migration comes with a new
SCHEMA_REVISION.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from inspector import settings
from inspector.errors import StoreError
from inspector.store.models import Base

MIGRATIONS = Path(__file__).resolve().parent / "migrations"  # installed with the package
# The Alembic revision whose schema models.py describes (the newest in migrations/versions).
SCHEMA_REVISION = "0008"
BUSY_TIMEOUT_MS = 15_000  # another station or a report may hold the write lock briefly
CONNECT_TIMEOUT_S = 10  # a database server that does not answer
STATEMENT_TIMEOUT_MS = 60_000


@dataclass
class Store:
    """An open results database and the folder its images are written to."""

    engine: Engine
    sessions: sessionmaker[Session]
    url: str  # as shown to people: without a password
    images_dir: Path
    sqlite_path: Path | None = None  # the file, for a SQLite database
    file_identity: tuple[int, int] | None = None  # the SQLite file's (device, inode) when opened
    schema_was: str | None = None  # the schema revision it had before opening (None: new)

    def session(self) -> Session:
        return self.sessions()

    def check_unchanged(self) -> None:
        """Raise StoreError when the SQLite file was deleted or replaced since it was
        opened: SQLite would go on writing into the unlinked file, and every result
        from then on would vanish with it."""
        if self.sqlite_path is None or self.file_identity is None:
            return
        try:
            stat = self.sqlite_path.stat()
        except FileNotFoundError:
            stat = None
        if stat is None or (stat.st_dev, stat.st_ino) != self.file_identity:
            how = "deleted" if stat is None else "replaced by another file"
            raise StoreError(
                f"{self.sqlite_path}: the database was {how} while results were being written to it; "
                "the results from then on are not stored. Restore the database (or keep the new one) "
                "and run again: images already stored are skipped"
            )

    @contextmanager
    def transaction(self, doing: str) -> Iterator[Session]:
        """A session in a transaction (committed on leaving) whose database errors are a
        StoreError naming the database and what was being done."""
        try:
            with self.session() as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.url}: {doing}: {database_problem(exc)}") from exc

    def close(self) -> None:
        self.engine.dispose()


# What SQLite says of a file that is not (or no longer) a sound database.
_DAMAGE = re.compile(r"file is not a database|disk image is malformed|malformed database schema|database corrupt")
_DAMAGE_ADVICE = (
    "nothing more is written to it. Restore it from a backup (or recover what is readable with "
    "`sqlite3 FILE .recover`), or start a new database with --db"
)


def database_problem(exc: BaseException) -> str:
    """A database error in words: a lock held too long, or a damaged file, is said as such."""
    if isinstance(exc, StoreError):
        return str(exc)
    if "locked" in str(exc):  # SQLite's busy timeout ran out
        return "the database is locked by another program; try again when it is done"
    said = str(getattr(exc, "orig", None) or exc.__cause__ or exc)
    if getattr(getattr(exc, "orig", None), "sqlstate", None) == "42501":  # a server's "insufficient privilege"
        return f"{said}: this login's role does not allow it (db/README.md; a schema upgrade is the owner's)"
    if _DAMAGE.search(said):
        return f"the database file is damaged ({said}); {_DAMAGE_ADVICE}"
    return said


def _refuse_damage(shown: str):
    """A ``handle_error`` listener: a damaged SQLite file, met by any query of any face
    (a run, a report, the GUI), is a StoreError saying so, never retried or written on."""

    def listener(context) -> None:
        original = context.original_exception
        if isinstance(original, sqlite3.DatabaseError) and _DAMAGE.search(str(original)):
            raise StoreError(f"{shown}: the database file is damaged ({original}); {_DAMAGE_ADVICE}")

    return listener


# Query parameters that carry secrets (``?password=``): never shown.
_SECRET_KEYS = re.compile(r"pass|secret|token|key", re.IGNORECASE)


def shown_url(parsed) -> str:
    """A database URL as messages show it: no password, in the address or the query."""
    secret = {k: "***" for k in parsed.query if _SECRET_KEYS.search(k)}
    shown = (parsed.update_query_dict(secret) if secret else parsed).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", "***")


def default_url() -> str:
    return f"sqlite:///{settings.data_dir() / 'inspector.db'}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses no committed row
    cursor.execute("PRAGMA cell_size_check=ON")  # damage found as it is read, before it spreads
    cursor.close()


def _reader_pragmas(dbapi_connection, _record) -> None:
    """For reports: the database is left in the journal mode it has (no switch to WAL)."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA cell_size_check=ON")
    cursor.close()


def _alembic_config(connection):
    from alembic.config import Config

    if not (MIGRATIONS / "env.py").exists():
        raise StoreError(f"database migrations are missing from the installation ({MIGRATIONS})")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _alembic_version_table() -> Table:
    """Alembic's own bookkeeping table, as Alembic creates it."""
    return Table(
        "alembic_version",
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )


def _migrate(engine: Engine, url: str, *, change: bool = True) -> str | None:
    """Bring the schema up to date; returns the revision it had (None: it was new).
    ``change`` False: only look, and refuse a schema that is not this version's."""
    for attempt in range(2):
        try:
            with engine.connect() as connection, _foreign_keys_off(connection), connection.begin():
                return _bring_up_to_date(connection, url) if change else _look(connection, url)
        except SQLAlchemyError:
            # Two stations creating the same new database at once: one finds a table
            # the other has just made. A second look finds the database complete.
            if attempt == 1:
                raise
            time.sleep(0.2)


@contextmanager
def _foreign_keys_off(connection) -> Iterator[None]:
    """SQLite without foreign-key actions while the schema changes: a migration rebuilds a
    table by copying it and dropping the old one, and a DROP TABLE with them on first
    deletes every row, cascading to the defects and reviews that point to it."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # no effect inside a transaction
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()  # whatever was left open, so the PRAGMA takes effect
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def _look(connection, url: str) -> str | None:
    """The schema revision, without changing anything; a StoreError unless it is current."""
    tables = set(inspect(connection).get_table_names())
    current = None
    if "alembic_version" in tables:
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if current != SCHEMA_REVISION:
        raise StoreError(
            f"{url}: schema {current or 'none'}, where this Inspector's is {SCHEMA_REVISION}: "
            "`inspector db upgrade` (by the database's owner) brings it up to date"
        )
    return current


def _bring_up_to_date(connection, url: str) -> str | None:
    tables = set(inspect(connection).get_table_names())
    current = None
    if "alembic_version" in tables:
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    ours = set(Base.metadata.tables)
    if current is None and tables - {"alembic_version"} <= ours:
        # A new database, or one whose creation was cut short (SQLite makes each table
        # apart): make what is missing and stamp it.
        _create_schema(connection)
    elif current is None and tables & ours:
        # Another program's tables, some named as ours: migrating would fail half-way
        # and leave some of our tables among theirs.
        clash = sorted(tables & ours)[0]
        raise StoreError(f"{url}: already has a table {clash!r} that is not Inspector's; use another database")
    elif current != SCHEMA_REVISION:
        _upgrade(connection, current, url)
    return current


def _create_schema(connection) -> None:
    Base.metadata.create_all(connection)  # tables that exist are left as they are...
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:  # ...so their indexes are checked one by one
            index.create(connection, checkfirst=True)
    version = _alembic_version_table()
    version.create(connection, checkfirst=True)
    connection.execute(version.insert().values(version_num=SCHEMA_REVISION))


def _upgrade(connection, current: str | None, url: str) -> None:
    """Bring a database at revision ``current`` to the newest revision with Alembic."""
    from alembic import command
    from alembic.script import ScriptDirectory

    config = _alembic_config(connection)
    scripts = ScriptDirectory.from_config(config)
    head = scripts.get_current_head()
    if current is not None and current not in {rev.revision for rev in scripts.walk_revisions()}:
        raise StoreError(
            f"{url}: the database schema ({current}) is newer than this Inspector knows ({head}); upgrade Inspector"
        )
    if current != head:
        command.upgrade(config, "head")


def _read_only_uri(path: Path) -> str:
    """A URI that opens a SQLite file without writing to it.

    A database in WAL mode needs a shared-memory file beside it, which a folder that
    cannot be written cannot take. Only there, and only when no write-ahead log holds
    data (no station is writing to it), is it opened as immutable: read as it is on
    disk. Otherwise a live log would be ignored and recent results left out.
    """
    path = path.resolve()
    uri = f"{path.as_uri()}?mode=ro"
    wal = path.with_name(path.name + "-wal")
    idle = not wal.exists() or wal.stat().st_size == 0
    return uri + ("&immutable=1" if idle and not os.access(path.parent, os.W_OK) else "")


def _holds_inspections(path: Path) -> bool:
    """Whether a SQLite file has Inspector's inspections table, read without changing it."""
    try:
        with closing(sqlite3.connect(_read_only_uri(path), uri=True)) as conn:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inspections'")
            return found.fetchone() is not None
    except sqlite3.Error:  # not a SQLite file at all
        return False


def open_store(
    url: str | None = None,
    *,
    images_dir: str | os.PathLike | None = None,
    create: bool = True,
    upgrade: bool = True,
) -> Store:
    """Open (creating or upgrading) the results database.

    Args:
        url: SQLAlchemy URL or a path to a SQLite file; the default database in the
            data directory when None.
        images_dir: where overlays and defect crops go; beside the SQLite file by default.
        create: make a SQLite database that does not exist yet; False for readers such
            as reports, where a mistyped path must not give an empty database.
        upgrade: create or upgrade the schema as needed; False only looks, and refuses
            a schema that is not this version's (``inspector db check``).

    Raises:
        StoreError: the URL is malformed, the file cannot be created or written, the
            database stays locked, or its schema is newer than this version; without
            ``create``, the SQLite file does not exist or holds no inspections.
    """
    url = url or default_url()
    if "://" not in url:  # a plain path
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: e.g. a port that is not a number
        unparsed = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)  # a password, even here...
        unparsed = re.sub(r"((?:pass|secret|token|key)[^=&]*=)[^&]*", r"\1***", unparsed, flags=re.IGNORECASE)
        raise StoreError(f"{unparsed}: not a database URL ({exc})") from None
    shown = shown_url(parsed)  # for messages and Store.url: no password
    sqlite_path = None
    read_only = False
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        sqlite_path = Path(parsed.database)
        if sqlite_path.is_dir():
            raise StoreError(f"{sqlite_path}: is a folder, not a database file (name the file, e.g. results.db)")
        if not create and not sqlite_path.is_file():
            raise StoreError(f"{sqlite_path}: no such database (check the path or --db)")
        if not create and not _holds_inspections(sqlite_path):  # an empty file, another program's database
            raise StoreError(f"{sqlite_path}: not an Inspector results database (it has no inspections)")
        # Reports only read: a database they may not write (an archive, another user's) is
        # opened read-only rather than refused.
        read_only = not create and not (os.access(sqlite_path, os.W_OK) and os.access(sqlite_path.parent, os.W_OK))
    if sqlite_path is not None and read_only:
        url = f"sqlite:///{_read_only_uri(sqlite_path)}&uri=true"
    elif sqlite_path is not None:
        try:
            sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{sqlite_path.parent}: cannot create the database folder ({exc.strerror})") from None
        if sqlite_path.exists() and not os.access(sqlite_path, os.W_OK):
            raise StoreError(f"{sqlite_path}: the database file is read-only")
        if not os.access(sqlite_path.parent, os.W_OK):
            raise StoreError(f"{sqlite_path.parent}: the database folder is read-only")
    if parsed.get_backend_name() == "sqlite":
        options = {"connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000}} if sqlite_path else {}
    else:
        # A server: a connection the server dropped (a restart) is noticed before use, and
        # a server that does not answer is said within seconds, not at the OS's timeout.
        options = {"pool_pre_ping": True}
        if parsed.get_backend_name() == "postgresql":
            # Times come back in UTC whatever the server's zone, as SQLite's are stored.
            options["connect_args"] = {
                "connect_timeout": CONNECT_TIMEOUT_S,
                # A statement waits at most a minute (a lock held by an upgrade) and a
                # dead network is found in 30 s, not at the OS's 15 minutes.
                "options": f"-c timezone=UTC -c statement_timeout={STATEMENT_TIMEOUT_MS}",
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
                "tcp_user_timeout": 30_000,
            }
    try:
        engine = create_engine(url, **options)
    except (SQLAlchemyError, ImportError) as exc:  # unknown dialect or a driver that is not installed
        raise StoreError(f"{shown}: cannot use this database URL ({exc})") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas if create else _reader_pragmas)
        event.listen(engine, "handle_error", _refuse_damage(shown))
    try:
        schema_was = _migrate(engine, shown, change=upgrade)
    except StoreError:
        engine.dispose()
        raise
    except (SQLAlchemyError, sqlite3.Error) as exc:
        engine.dispose()
        raise StoreError(f"{shown}: cannot open the database: {database_problem(exc)}") from None
    if images_dir is None:
        images_dir = (sqlite_path.parent if sqlite_path else settings.data_dir()) / "images"
    identity = None
    if sqlite_path is not None:
        stat = sqlite_path.stat()
        identity = (stat.st_dev, stat.st_ino)
    return Store(
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        url=shown,
        images_dir=Path(images_dir),
        sqlite_path=sqlite_path,
        file_identity=identity,
        schema_was=schema_was,
    )


def check_sqlite_file(path: Path) -> list[str]:
    """SQLite's full integrity check of a results file, read-only: the problems it finds
    (none: sound). Slow on large files (about a second per 100 MB), so not done on every
    open: damage a run or report meets is said as it is met (see ``_refuse_damage``)."""
    try:
        with closing(sqlite3.connect(_read_only_uri(path), uri=True)) as conn:
            found = [line for (line,) in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if found == ["ok"] else found
