"""``inspector db``: the results database itself, for the person who looks after it."""

from __future__ import annotations

import argparse

from inspector.errors import InspectorError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "db",
        help="create, upgrade or check a results database",
        description=(
            "Look after a results database: bring its schema to this version's (a new database gets "
            "it whole), or check a SQLite file for damage. See db/README.md for a central PostgreSQL."
        ),
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, helped in (
        ("upgrade", "create the schema, or upgrade it to this version's (run as the database's owner)"),
        ("check", "check a database: a SQLite file's pages, a server's schema revision"),
    ):
        action = actions.add_parser(name, help=helped, description=helped)
        action.add_argument("--db", required=True, help="SQLAlchemy URL or SQLite file")
        action.set_defaults(run=run)
    forward = actions.add_parser(
        "forward",
        help="send a station's stored results to the central database (what `run --central` left waiting)",
        description="Send every result of the station's own database not yet in the central one, in order, once.",
    )
    forward.add_argument("--db", required=True, help="the station's own SQLite file")
    forward.add_argument("--central", required=True, metavar="URL", help="the central database")
    forward.add_argument(
        "--again",
        action="store_true",
        help="offer every result again (after the central database was restored from a backup); "
        "those it holds are skipped",
    )
    forward.set_defaults(run=run_forward)


def run_forward(args: argparse.Namespace) -> int:
    from inspector.services.forwarding import Forwarder
    from inspector.store.database import open_store

    store = open_store(args.db, create=False)
    try:
        forwarder = Forwarder(store, args.central)
        if args.again:
            forwarder.start_over()
        state = forwarder.forward_all()
        forwarder.close()
    finally:
        store.close()
    print(state.describe())
    return 0 if state.reachable and not state.waiting else 1


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inspector.store.database import SCHEMA_REVISION, check_sqlite_file, open_store

    sqlite_file = None
    if "://" not in args.db or args.db.startswith("sqlite:///"):
        sqlite_file = Path(args.db.removeprefix("sqlite:///")).expanduser()
    if args.action == "check" and sqlite_file is not None:
        if not sqlite_file.is_file():
            raise InspectorError(f"{sqlite_file}: no such database")
        problems = check_sqlite_file(sqlite_file)  # before opening: a damaged file is not opened
        for problem in problems[:20]:
            print(f"{sqlite_file}: {problem}")
        if problems:
            print(
                f"{sqlite_file}: damaged; restore it from a backup, or recover what is readable with sqlite3 .recover"
            )
            return 1
    upgrading = args.action == "upgrade"
    store = open_store(args.db, create=upgrading, upgrade=upgrading)
    try:
        was = store.schema_was
        if args.action == "upgrade":
            done = (
                "created" if was is None else ("already current" if was == SCHEMA_REVISION else f"upgraded from {was}")
            )
            print(f"{store.url}: schema {SCHEMA_REVISION}, {done}")
        else:
            print(f"{store.url}: sound, schema {SCHEMA_REVISION}")
    finally:
        store.close()
    return 0
