"""Reports over a large history: 100,000 inspections, aggregate queries, bounded memory.

Fills a fresh SQLite database (or, with --postgresql, a database on a throwaway
PostgreSQL server) with synthetic rows (bulk inserts, not the pipeline), then times each
report format and records the peak RSS of the process.

    .venv/bin/python benchmarks/bench_report.py [--rows 100000] [--postgresql]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from inspector.gui.pdf import write_pdf
from inspector.report import ReportFilter, export_report
from inspector.store.database import open_store
from inspector.store.models import Defect, Inspection, RecipeSnapshot, Run


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(store, rows: int) -> None:
    rng = np.random.default_rng(0)
    start = datetime.now(timezone.utc) - timedelta(days=30)
    with store.session() as session, session.begin():
        session.add(RecipeSnapshot(id=1, sha256="a" * 64, product="Bench part", content="{}"))
        session.add(
            Run(id=1, recipe_id=1, station="bench", source="bench", settings={}, model_name="m", model_sha256="b" * 64)
        )
    chunk = 10_000
    labels = ["defect", "missing feature", "scratch", "stain"]
    next_defect = 1
    for first in range(1, rows + 1, chunk):
        ids = range(first, min(rows + 1, first + chunk))
        verdicts = rng.choice(["PASS", "FAIL", "ERROR"], size=len(ids), p=[0.9, 0.08, 0.02])
        inspections, defects = [], []
        for i, verdict in zip(ids, verdicts, strict=True):
            n = int(rng.integers(1, 4)) if verdict == "FAIL" else 0
            inspections.append(
                dict(
                    id=i,
                    run_id=1,
                    recipe_id=1,
                    recipe_sha256="a" * 64,
                    model_sha256="b" * 64,
                    product="Bench part",
                    image_path=f"/line/images/{i:07d}.png",
                    image_sha256=f"{i:064x}",
                    width=640,
                    height=480,
                    verdict=str(verdict),
                    defect_count=n,
                    timings={},
                    total_ms=100.0,
                    inspected_at=start + timedelta(seconds=26 * i),
                )
            )
            for _ in range(n):
                defects.append(
                    dict(
                        id=next_defect,
                        inspection_id=i,
                        label=labels[int(rng.integers(4))],
                        score=0.8,
                        area=float(rng.integers(40, 2000)),
                        x1=1,
                        y1=1,
                        x2=20,
                        y2=20,
                        outline=[],
                    )
                )
                next_defect += 1
        with store.session() as session, session.begin():
            session.execute(insert(Inspection), inspections)
            if defects:
                session.execute(insert(Defect), defects)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--postgresql", action="store_true", help="on a throwaway PostgreSQL server (tests/postgres.py), fsync on"
    )
    args = parser.parse_args()
    server = None
    if args.postgresql:
        from tests.postgres import PostgresServer, server_binaries

        server = PostgresServer(server_binaries(), durable=True).start()
    try:
        _measure(args, server)
    finally:
        if server is not None:
            server.stop()


def _measure(args, server) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(server.create_database() if server else str(Path(tmp) / "big.db"))
        t0 = time.perf_counter()
        fill(store, args.rows)
        print(f"filled {args.rows} inspections in {time.perf_counter() - t0:.1f} s (RSS peak {peak_rss_mb():.0f} MB)")
        for fmt in ("html", "pdf", "csv"):
            t0 = time.perf_counter()
            written = export_report(store, ReportFilter(), fmt, Path(tmp) / f"report.{fmt}", print_pdf=write_pdf)
            size = sum(p.stat().st_size for p in written) / 1e6
            print(
                f"{fmt:<5} {time.perf_counter() - t0:6.2f} s  {size:7.2f} MB  (RSS peak so far {peak_rss_mb():.0f} MB)"
            )
        store.close()


if __name__ == "__main__":
    main()
