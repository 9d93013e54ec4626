"""db/README.md's procedure for a central PostgreSQL database, step by step, on a real
server: owner, schema, roles of least privilege, a station's run, a report, a backup
restored, an upgrade."""

from __future__ import annotations

import csv
import dataclasses
import subprocess

import psycopg
import pytest

from inspector.cli import main
from inspector.errors import StoreError
from inspector.recipe.io import save_recipe
from inspector.services.inspection_loop import RunSettings, run_inspection
from inspector.sources.files import FileSource
from inspector.store.database import SCHEMA_REVISION, open_store
from tests.unit.test_store_integrity import line, pipeline_for  # noqa: F401  (fixture)

ROLES_SQL = __import__("pathlib").Path(__file__).resolve().parents[2] / "db" / "roles.sql"


def login(server, role: str, database: str) -> str:
    return server.url(database).replace(f"//{server.url().split('//')[1].split('@')[0]}@", f"//{role}:pw-{role}@")


def superuser(server, sql: str, database: str = "postgres") -> None:
    with psycopg.connect(server.url(database).replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(sql)


def psql(server, database: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(server.binaries / "psql"),
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            server.url(database).replace("+psycopg", ""),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def refused(url: str, sql: str) -> bool:
    """Whether the server refuses ``sql`` to this login for want of privilege."""
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        try:
            conn.execute(sql)
        except psycopg.errors.InsufficientPrivilege:
            return True
        conn.rollback()
        return False


@pytest.fixture
def central(postgres_server):
    """Steps 2-5 of db/README.md: the owner and its database, the schema, the roles, and
    one login per role."""
    server = postgres_server
    name = "plant_" + __import__("uuid").uuid4().hex[:8]
    for role in ("inspector_owner",):
        superuser(server, f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
                          f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'; END IF; END $$")  # fmt: skip
    superuser(server, f'CREATE DATABASE "{name}" OWNER inspector_owner')
    owner = login(server, "inspector_owner", name)
    assert main(["db", "upgrade", "--db", owner]) == 0
    done = psql(server, name, "-f", str(ROLES_SQL))
    assert done.returncode == 0, done.stderr
    assert psql(server, name, "-f", str(ROLES_SQL)).returncode == 0  # again, after an upgrade: no harm
    for user, group in (
        ("station_line3", "inspector_station"),
        ("quality", "inspector_report"),
        ("engineer", "inspector_publisher"),
    ):
        superuser(server, f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN "
                          f"CREATE ROLE {user} LOGIN PASSWORD 'pw-{user}' IN ROLE {group}; END IF; END $$")  # fmt: skip
    yield server, name, owner
    superuser(server, f'DROP DATABASE "{name}" WITH (FORCE)')


def test_a_station_stores_results_and_a_report_reader_reads_them_each_with_no_more_rights(central, line, tmp_path):  # noqa: F811
    server, name, _ = central
    station, reader = login(server, "station_line3", name), login(server, "quality", name)
    _, _, folder, _ = line
    store = open_store(station, images_dir=tmp_path / "images")
    summary = run_inspection(
        pipeline_for(line), store, FileSource([folder]), RunSettings(station="line 3", read_ahead=0)
    )
    store.close()
    assert summary.status == "finished" and summary.inspected == 6
    # A file that changed after an ERROR replaces its row: the one DELETE a station has.
    assert not refused(station, "DELETE FROM inspections WHERE verdict = 'ERROR'")
    for sql in (
        "DROP TABLE defects",
        "DELETE FROM runs",
        "UPDATE inspections SET verdict = 'PASS'",
        "CREATE TABLE mine (x int)",
        "TRUNCATE reviews",
    ):
        assert refused(station, sql), sql
    out = tmp_path / "report.csv"
    assert main(["report", "--db", reader, "--out", str(out)]) == 0
    with out.open() as f:
        assert sorted(r["verdict"] for r in csv.DictReader(f)) == ["FAIL"] * 3 + ["PASS"] * 3
    review = "INSERT INTO reviews (inspection_id, decision, operator, note, created_at) VALUES (1, 'x', '', '', now())"
    for sql in (review, "DELETE FROM inspections", "UPDATE runs SET status = 'x'"):
        assert refused(reader, sql), sql


def test_a_backup_restored_into_a_new_database_reports_the_same(central, line, tmp_path):  # noqa: F811
    server, name, owner = central
    _, _, folder, _ = line
    store = open_store(login(server, "station_line3", name), images_dir=tmp_path / "images")
    run_inspection(pipeline_for(line), store, FileSource([folder]), RunSettings(read_ahead=0))
    store.close()
    dump = tmp_path / "inspector.dump"
    done = subprocess.run(
        [str(server.binaries / "pg_dump"), "-Fc", "-f", str(dump), owner.replace("+psycopg", "")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    restored = name + "_restored"
    superuser(server, f'CREATE DATABASE "{restored}" OWNER inspector_owner')
    try:
        target = login(server, "inspector_owner", restored).replace("+psycopg", "")
        done = subprocess.run(
            [str(server.binaries / "pg_restore"), "-d", target, str(dump)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        for db, out in ((name, tmp_path / "a.csv"), (restored, tmp_path / "b.csv")):
            assert main(["report", "--db", login(server, "quality", db), "--out", str(out)]) == 0
        assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    finally:
        superuser(server, f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')


def test_an_older_central_database_is_upgraded_by_its_owner_only(central, capsys):
    from alembic import command
    from sqlalchemy import create_engine

    from inspector.store.database import _alembic_config

    server, name, owner = central
    engine = create_engine(owner)
    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0002")  # as the previous Inspector left it
    engine.dispose()
    capsys.readouterr()
    assert main(["db", "check", "--db", login(server, "quality", name)]) == 2  # looks, changes nothing
    assert "schema 0002, where this Inspector's is" in capsys.readouterr().err
    assert main(["db", "upgrade", "--db", login(server, "station_line3", name)]) == 2  # a station may not
    assert "must be owner" in capsys.readouterr().err
    assert main(["db", "upgrade", "--db", owner]) == 0
    assert f"schema {SCHEMA_REVISION}, upgraded from 0002" in capsys.readouterr().out
    assert main(["db", "check", "--db", login(server, "quality", name)]) == 0


def test_a_station_login_may_forward_what_it_stored_while_the_server_was_away(central, line, tmp_path):  # noqa: F811
    from inspector.services.forwarding import Forwarder

    server, name, _ = central
    _, _, folder, _ = line
    local = open_store(str(tmp_path / "station.db"))
    run_inspection(pipeline_for(line), local, FileSource([folder]), RunSettings(station="line 3", read_ahead=0))
    run_inspection(pipeline_for(line), local, FileSource([folder]), RunSettings(station="line 3", force=True))
    forwarder = Forwarder(local, login(server, "station_line3", name))
    state = forwarder.forward_all()
    forwarder.close()
    local.close()
    assert state.reachable and state.waiting == 0, state.problem
    out = tmp_path / "central.csv"
    assert main(["report", "--db", login(server, "quality", name), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 1 + 12


def test_an_engineer_publishes_and_a_station_pulls_but_may_not_publish(central, line, tmp_path):  # noqa: F811
    from inspector.services.publishing import publish, pull

    server, name, _ = central
    recipe = line[0]
    engineer = open_store(login(server, "engineer", name))
    assert publish(engineer, recipe.source, by="engineer") == (1, True)
    engineer.close()
    station = open_store(login(server, "station_line3", name))
    pulled, version = pull(station, recipe.name, tmp_path / "station")
    assert version == 1 and pulled.reference_path.is_file()
    save_recipe(dataclasses.replace(recipe, description="changed at the station"), recipe.source)
    with pytest.raises(StoreError, match="permission denied"):
        publish(station, recipe.source, by="station")
    station.close()
