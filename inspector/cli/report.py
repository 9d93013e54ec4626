"""``inspector report``: CSV, HTML or PDF reports from the results database."""

from __future__ import annotations

import argparse
import contextlib
import os
from datetime import datetime, timezone
from pathlib import Path

from inspector.errors import InspectorError


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)"
        ) from None
    try:
        # Times are stored in UTC; a time without a zone is read as local time.
        return (value if value.tzinfo else value.astimezone()).astimezone(timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):  # e.g. year 1: no local time zone can be said for it
        raise argparse.ArgumentTypeError(f"{text!r} is too far from today to be an inspection time") from None


def _run_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value < 2**63:  # SQLite's integers
        raise argparse.ArgumentTypeError(f"{text!r} is not a run number (a whole number from 1)")
    return value


def add_parser(sub) -> None:
    from inspector.report import FORMATS

    p = sub.add_parser(
        "report",
        help="export a CSV, HTML or PDF report",
        description="Export a report of stored inspections (KPIs, defects by class, fail rate "
        "over time, rejects with overlay thumbnails).",
    )
    p.add_argument("--db", default=None, help="database URL or SQLite file (default: the data directory's)")
    p.add_argument("--format", choices=FORMATS, default=None, help="default: from --out's suffix, else html")
    p.add_argument("--out", type=Path, required=True, help="output file (CSV: a second -defects file beside it)")
    p.add_argument("--product", help="only this product")
    p.add_argument("--since", type=_when, help="from this date/time (inclusive)")
    p.add_argument("--until", type=_when, help="until this date/time (exclusive)")
    p.add_argument("--verdict", choices=("PASS", "FAIL", "ERROR"))
    p.add_argument("--run", type=_run_number, dest="run_id", help="only this run")
    p.add_argument("--station", help="only this station's results")
    p.add_argument("--lot", default="", help="the lot the report covers (printed in its header)")
    p.add_argument("--order", default="", help="the order the report covers (printed in its header)")
    p.add_argument("--sign-off", dest="signed_by", default="", help="who checks and signs the report")
    p.set_defaults(run=run)


def _pdf_printer():
    """Qt's printer of the report's HTML (imported only for a PDF: Qt costs a second)."""
    from inspector.gui.pdf import write_pdf

    return write_pdf


def run(args: argparse.Namespace) -> int:
    from inspector.report import ReportFilter, ReportInfo, export_report
    from inspector.store.database import open_store

    if args.since and args.until and args.since >= args.until:
        raise InspectorError(f"--since {args.since} is not before --until {args.until}")
    fmt = args.format or _format_of(args.out)
    store = open_store(args.db, create=False)
    try:
        if args.run_id is not None:
            _check_run(store, args.run_id)
        flt = ReportFilter(
            product=args.product,
            since=args.since,
            until=args.until,
            verdict=args.verdict,
            run_id=args.run_id,
            station=args.station,
        )
        if _same_file(args.out, store.sqlite_path):
            raise InspectorError(f"--out {args.out} is the database the report is read from, or one of its files")
        info = ReportInfo(lot=args.lot, order=args.order, signed_by=args.signed_by)
        written = export_report(store, flt, fmt, args.out, info, print_pdf=_pdf_printer() if fmt == "pdf" else None)
    finally:
        store.close()
    for path in written:
        print(f"wrote {path}")
    return 0


def _check_run(store, run_id: int) -> None:
    """A run number that is not in the database is a mistake, not an empty report."""
    from inspector.report.query import run_numbers

    exists, first, last = run_numbers(store, run_id)
    if exists:
        return
    held = "it holds no runs" if first is None else f"its runs are numbered {first} to {last}"
    raise InspectorError(f"--run {run_id}: no such run in {store.url}; {held}")


def _format_of(out: Path) -> str:
    """The format an output file's suffix names (a.csv: csv), else html."""
    from inspector.report import FORMATS

    suffix = out.suffix.lower().lstrip(".")
    return {"htm": "html"}.get(suffix, suffix) if suffix in (*FORMATS, "htm") else "html"


def _same_file(out: Path, database: Path | None) -> bool:
    """Whether writing ``out`` would write over the database or one of SQLite's files
    beside it (its write-ahead log, shared memory, journal), hard links included."""
    if database is None:
        return False
    files = [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm", "-journal"))]
    written = [out, out.with_name(f"{out.stem}-defects{out.suffix}")]  # CSV writes a second file
    for target in written:
        for file in files:
            if target.resolve() == file.resolve():
                return True
            with contextlib.suppress(OSError):  # either not there: no hard link between them
                if os.path.samefile(target, file):
                    return True
    return False
