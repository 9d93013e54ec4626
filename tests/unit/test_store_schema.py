"""A new database gets its schema from models.py; it must be the schema the migrations build."""

from __future__ import annotations

import os
import sqlite3

import pytest
from sqlalchemy import create_engine, inspect

from inspector.store.database import SCHEMA_REVISION, _alembic_config, _upgrade, open_store


def schema(url: str) -> dict:
    """Every table's columns, keys, indexes and constraints, as the database reports them."""
    engine = create_engine(url)
    try:
        found = inspect(engine)
        return {
            table: {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c.get("default"), c.get("primary_key"))
                    for c in found.get_columns(table)
                ],
                "primary_key": found.get_pk_constraint(table),
                "foreign_keys": sorted(map(repr, found.get_foreign_keys(table))),
                "indexes": sorted(map(repr, found.get_indexes(table))),
                "unique": sorted(map(repr, found.get_unique_constraints(table))),
                "checks": sorted(map(repr, found.get_check_constraints(table))),
            }
            for table in sorted(found.get_table_names())
        }
    finally:
        engine.dispose()


def test_a_new_database_has_the_schema_the_migrations_build(tmp_path):
    open_store(str(tmp_path / "models.db")).close()
    migrated = f"sqlite:///{tmp_path / 'migrated.db'}"
    engine = create_engine(migrated)
    with engine.begin() as connection:
        _upgrade(connection, None, migrated)
    engine.dispose()

    assert schema(f"sqlite:///{tmp_path / 'models.db'}") == schema(migrated)
    with sqlite3.connect(tmp_path / "migrated.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(SCHEMA_REVISION,)]


def test_the_schema_revision_is_the_newest_migration(tmp_path):
    from alembic.script import ScriptDirectory

    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        assert ScriptDirectory.from_config(_alembic_config(connection)).get_current_head() == SCHEMA_REVISION
    engine.dispose()


def test_a_database_with_other_tables_gets_ours_by_the_migrations(tmp_path):
    with sqlite3.connect(tmp_path / "shared.db") as conn:
        conn.execute("CREATE TABLE line_notes (id INTEGER PRIMARY KEY, text TEXT)")
        conn.execute("INSERT INTO line_notes (text) VALUES ('belt changed')")
    open_store(str(tmp_path / "shared.db")).close()
    open_store(str(tmp_path / "fresh.db")).close()

    ours = schema(f"sqlite:///{tmp_path / 'shared.db'}")
    assert ours.pop("line_notes")
    assert ours == schema(f"sqlite:///{tmp_path / 'fresh.db'}")
    with sqlite3.connect(tmp_path / "shared.db") as conn:
        assert conn.execute("SELECT text FROM line_notes").fetchall() == [("belt changed",)]


def test_a_database_whose_creation_was_cut_short_is_completed(tmp_path):
    open_store(str(tmp_path / "fresh.db")).close()
    open_store(str(tmp_path / "cut.db")).close()
    with sqlite3.connect(tmp_path / "cut.db") as conn:  # as if the process died while creating it
        conn.execute("DROP TABLE reviews")
        conn.execute("DROP INDEX ix_inspections_verdict")
        conn.execute("DELETE FROM alembic_version")
    open_store(str(tmp_path / "cut.db")).close()
    assert schema(f"sqlite:///{tmp_path / 'cut.db'}") == schema(f"sqlite:///{tmp_path / 'fresh.db'}")
    with sqlite3.connect(tmp_path / "cut.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(SCHEMA_REVISION,)]


def test_a_current_database_opens_without_importing_alembic(tmp_path):
    import subprocess
    import sys

    open_store(str(tmp_path / "a.db")).close()
    code = (
        "import sys; from inspector.store.database import open_store; "
        f"open_store({str(tmp_path / 'a.db')!r}).close(); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_two_stations_creating_the_same_database_at_once_both_open_it(tmp_path):
    import threading

    open_store(str(tmp_path / "fresh.db")).close()
    for k in range(5):
        path = str(tmp_path / f"shared{k}.db")
        failures = []

        def open_it(path=path, failures=failures):
            try:
                open_store(path).close()
            except Exception as exc:
                failures.append(exc)

        stations = [threading.Thread(target=open_it) for _ in range(2)]
        for station in stations:
            station.start()
        for station in stations:
            station.join()
        assert failures == []
        assert schema(f"sqlite:///{path}") == schema(f"sqlite:///{tmp_path / 'fresh.db'}")


def test_every_migration_file_is_installed_with_the_package():
    import fnmatch
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")
    from inspector.store.database import MIGRATIONS

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    patterns = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]["inspector.store"]
    files = [
        path.relative_to(MIGRATIONS.parent).as_posix()
        for path in MIGRATIONS.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    assert "migrations/versions/0001_initial_schema.py" in files
    assert [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)] == []


def test_a_database_url_is_shown_without_its_password():
    from inspector.errors import StoreError

    url = "postgresql+nosuchdriver://inspector:s3cret@db.example/line1"
    with pytest.raises(StoreError) as refused:
        open_store(url)
    assert "s3cret" not in str(refused.value) and "inspector:***@db.example/line1" in str(refused.value)


def test_a_database_with_another_programs_table_of_the_same_name_is_left_as_it_was(tmp_path):
    from inspector.errors import StoreError

    path = tmp_path / "erp.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, machine TEXT)")
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    with pytest.raises(StoreError, match=r"already has a table 'runs' that is not Inspector's"):
        open_store(str(path))
    with sqlite3.connect(path) as conn:
        names = sorted(name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    assert names == ["orders", "runs"]


def test_a_folder_given_as_the_database_is_named_as_one(tmp_path):
    from inspector.errors import StoreError

    with pytest.raises(StoreError, match=r"is a folder, not a database file"):
        open_store(str(tmp_path))


def test_a_read_only_database_is_read_as_immutable_only_when_no_station_is_writing_to_it(tmp_path, monkeypatch):
    from inspector.store import database

    path = tmp_path / "line.db"
    path.write_bytes(b"")
    monkeypatch.setattr(database.os, "access", lambda p, mode: mode != os.W_OK)  # a folder we may not write
    assert database._read_only_uri(path).endswith("?mode=ro&immutable=1")
    (tmp_path / "line.db-wal").write_bytes(b"recent results")  # a station's write-ahead log
    assert database._read_only_uri(path).endswith("?mode=ro")


def test_a_url_that_cannot_be_parsed_is_an_error_without_its_password():
    from inspector.errors import StoreError

    with pytest.raises(StoreError) as refused:
        open_store("postgresql://inspector:s3cret@db.example:badport/line1")  # a port that is no number
    assert "not a database URL" in str(refused.value) and "s3cret" not in str(refused.value)


def test_a_database_of_the_first_schema_is_upgraded_with_its_results_kept(tmp_path):
    from alembic import command

    old = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(old)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0001")  # a station's database before this version
        connection.exec_driver_sql(
            "INSERT INTO recipe_snapshots (sha256, product, content, created_at) "
            "VALUES ('r', 'Cookie', '', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO runs (recipe_id, station, source, settings, model_name, model_sha256, started_at, status) "
            "VALUES (1, 's', 'x', '{}', 'm', 'h', '2026-01-01', 'finished')"
        )
        connection.exec_driver_sql(
            "INSERT INTO inspections (run_id, recipe_id, recipe_sha256, model_sha256, product, image_path, verdict, "
            "defect_count, timings, total_ms, inspected_at) VALUES (1, 1, 'r', 'h', 'Cookie', 'a.jpg', 'PASS', 0, "
            "'{}', 1.0, '2026-01-01')"
        )
    engine.dispose()
    open_store(str(tmp_path / "old.db")).close()
    open_store(str(tmp_path / "fresh.db")).close()
    assert schema(old) == schema(f"sqlite:///{tmp_path / 'fresh.db'}")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        kept = conn.execute("SELECT image_path, verdict, anomaly_score, registration FROM inspections").fetchall()
        assert kept == [("a.jpg", "PASS", None, None)]
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(SCHEMA_REVISION,)]


def test_upgrading_keys_the_first_row_of_each_image_and_keeps_older_duplicates(tmp_path):
    """Rows stored before one row per image was the database's rule: the first judged row
    of an image and the first ERROR of a file get their key; later duplicates stay,
    without one."""
    from alembic import command

    db = tmp_path / "old.db"
    open_store(str(db)).close()
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0002")
    engine.dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO recipe_snapshots (id, sha256, product, content, created_at) VALUES (1,'r','p','',0)")
        conn.execute(
            "INSERT INTO runs (id, recipe_id, station, source, settings, model_name, model_sha256, started_at, status) "
            "VALUES (1, 1, 's', 'x', '{}', 'm', 'm', 0, 'finished')"
        )
        for path, sha, verdict in [("a.png", "A", "PASS"), ("a2.png", "A", "PASS"), ("e.png", "E", "ERROR"),
                                   ("e.png", "E", "ERROR"), ("f.png", "E", "ERROR")]:  # fmt: skip
            conn.execute(
                "INSERT INTO inspections (run_id, recipe_id, recipe_sha256, model_sha256, product, image_path, "
                "image_sha256, verdict, defect_count, timings, total_ms, inspected_at) "
                "VALUES (1, 1, 'r', 'm', 'p', ?, ?, ?, 0, '{}', 0, 0)",
                (path, sha, verdict),
            )
        conn.execute(
            "INSERT INTO defects (inspection_id, label, score, area, x1, y1, x2, y2, outline) "
            "VALUES (1, 'defect', 1, 1, 0, 0, 1, 1, '[]')"
        )
        conn.execute(
            "INSERT INTO reviews (inspection_id, decision, operator, note, created_at) "
            "VALUES (1, 'confirmed', '', '', 0)"
        )
    open_store(str(db)).close()  # upgrades, rebuilding the inspections table on the way (0007)
    # A rebuilt table's rows keep what points to them: nothing cascades away.
    assert rows_of(db, "SELECT COUNT(*) FROM defects") == rows_of(db, "SELECT COUNT(*) FROM reviews") == [(1,)]
    keys = [key for (key,) in rows_of(db, "SELECT result_key FROM inspections ORDER BY id")]
    assert keys[0] == "A" and keys[1] is None
    assert keys[2] and keys[2].startswith("E/") and keys[3] is None
    assert keys[4] and keys[4].startswith("E/") and keys[4] != keys[2]


def rows_of(db, sql):
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_on_postgresql_a_new_database_has_the_schema_the_migrations_build(postgres_server):
    """The same promise on a PostgreSQL server: models.py and the migrations agree, and a
    database created by an older Inspector is brought up to date on open."""
    from alembic import command

    made, migrated = postgres_server.create_database(), postgres_server.create_database()
    try:
        open_store(made).close()
        engine = create_engine(migrated)
        with engine.begin() as connection:
            _upgrade(connection, None, migrated)
            command.downgrade(_alembic_config(connection), "0001")  # as an older Inspector left it
        engine.dispose()
        open_store(migrated).close()  # upgraded on open
        assert schema(made) == schema(migrated)
        engine = create_engine(migrated)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [(SCHEMA_REVISION,)]
        engine.dispose()
    finally:
        postgres_server.drop_database(made)
        postgres_server.drop_database(migrated)
