"""Several stations writing to one central PostgreSQL server at once.

Starts a throwaway PostgreSQL server on the loopback (the tests' own: tests/postgres.py,
from the system's server binaries, here with fsync on as in a plant), then runs STATIONS
processes that each store results with defects through Inspector's real writer
(ResultWriter: batches, the one-row-per-result check, the database's unique key), with no
inference in the way:

1. full rate: each station submits as fast as the writer takes them. Measured: the
   aggregate rate, and each result's write latency (the database transaction that
   stores its batch: look for duplicates, insert rows and defects, commit);
2. a paced line: each station submits 50 results a second (a fast inspection line) and
   the time from submit to durable (the writer's after-commit callback) is measured;
3. overlap: every station also submits the same set of images, at once; the database
   must keep one row of each.

Afterwards every row is counted: nothing lost, nothing twice.

    .venv/bin/python benchmarks/bench_central.py [--stations 4] [--results 3000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _records(run_id: int, recipe_id: int, keys: list[str], rng):
    from inspector.engine.types import FAIL, PASS, Finding, InspectionResult, ModelIdentity
    from inspector.store.models import utcnow
    from inspector.store.repository import InspectionRecord

    model = ModelIdentity(name="bench", path="<bench>", sha256="b" * 64)
    outline = np.stack([np.cos(np.linspace(0, 6.28, 40)), np.sin(np.linspace(0, 6.28, 40))], 1) * 20 + 100
    timings = {k: 1.0 for k in ("read", "register", "segment", "select", "rules", "compare", "anomaly", "verdict")}
    for key in keys:
        failed = rng.random() < 0.3
        findings = tuple(
            Finding("scratch", 0.8, 500.0, (80.0, 80.0, 120.0, 120.0), outline.astype(np.float32))
            for _ in range(int(rng.integers(1, 4)) if failed else 0)
        )
        result = InspectionResult(FAIL if failed else PASS, findings, (1280, 1024), timings, "a" * 64, model)
        yield InspectionRecord(
            run_id, recipe_id, "Bench part", f"/line/{key}.png", key, result, utcnow(), result_key=key
        )


def station(url: str, run_id: int, recipe_id: int, keys: list[str], pace: float | None, out) -> None:
    """One station process: submit the records, time the writes, report back."""
    from inspector.services import writer as writer_module
    from inspector.services.writer import ResultWriter
    from inspector.store.database import open_store

    store = open_store(url)
    batch_ms: list[tuple[float, int]] = []
    real_flush = ResultWriter._flush

    def timed_flush(self, batch):
        started = time.perf_counter()
        real_flush(self, batch)
        batch_ms.append(((time.perf_counter() - started) * 1e3, len(batch)))

    writer_module.ResultWriter._flush = timed_flush
    writer = ResultWriter(store, Path("/nonexistent"), save_overlays=False)
    durable_ms: list[float] = []
    rng = np.random.default_rng(run_id)
    started = time.perf_counter()
    for k, record in enumerate(_records(run_id, recipe_id, keys, rng)):
        if pace:
            time.sleep(max(0.0, started + k / pace - time.perf_counter()))
        submitted = time.perf_counter()
        writer.submit(record, None, then=lambda s=submitted: durable_ms.append((time.perf_counter() - s) * 1e3))
    writer.close()
    elapsed = time.perf_counter() - started
    store.close()
    per_result = [ms for ms, n in batch_ms for _ in range(n)]
    out.put(
        {
            "written": writer.written,
            "elsewhere": sum(writer.stored_elsewhere.values()),
            "elapsed": elapsed,
            "write_ms": per_result,
            "durable_ms": durable_ms,
            "cpu_ms_per_result": 1e3 * writer.busy_cpu_s / max(1, writer.written),
        }
    )


def _runs(url: str, stations: int) -> list[tuple[int, int]]:
    from inspector.store.database import open_store
    from inspector.store.models import RecipeSnapshot, Run

    store = open_store(url)
    with store.session() as session, session.begin():
        recipe = RecipeSnapshot(sha256="a" * 64, product="Bench part", content="{}")
        session.add(recipe)
        session.flush()
        runs = [
            Run(recipe_id=recipe.id, station=f"station {k}", source="bench", settings={}, model_name="bench",
                model_sha256="b" * 64)
            for k in range(stations)
        ]  # fmt: skip
        session.add_all(runs)
        session.flush()
        ids = [(run.id, recipe.id) for run in runs]
    store.close()
    return ids


def _phase(url: str, runs, keys_of, pace: float | None) -> list[dict]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    processes = [
        context.Process(target=station, args=(url, run_id, recipe_id, keys_of(k), pace, out))
        for k, (run_id, recipe_id) in enumerate(runs)
    ]
    for p in processes:
        p.start()
    reports = [out.get() for _ in processes]
    for p in processes:
        p.join()
    return reports


def _p(values, q) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=4)
    parser.add_argument("--results", type=int, default=3000, help="results per station at full rate")
    args = parser.parse_args()
    from tests.helpers import rows
    from tests.postgres import PostgresServer, server_binaries

    server = PostgresServer(server_binaries(), durable=True).start()  # commits reach the disk
    try:
        url = server.create_database()
        runs = _runs(url, args.stations)
        n = args.results

        full = _phase(url, runs, lambda k: [f"s{k}-{i:07d}" for i in range(n)], None)
        wall = max(r["elapsed"] for r in full)
        written = sum(r["written"] for r in full)
        write_ms = [ms for r in full for ms in r["write_ms"]]
        print(f"full rate: {args.stations} stations x {n} results with defects")
        print(f"  aggregate {written / wall:.0f} results/s ({written} in {wall:.1f} s)")
        print(f"  write latency per result (its batch's transaction): p50 {_p(write_ms, 50):.1f} ms, "
              f"p95 {_p(write_ms, 95):.1f} ms, p99 {_p(write_ms, 99):.1f} ms")  # fmt: skip
        cpu = np.mean([r["cpu_ms_per_result"] for r in full])
        print(f"  the writer threads' CPU time: {cpu:.2f} ms per result (on {os.cpu_count()} cores in all)")
        durable = [ms for r in full for ms in r["durable_ms"]]
        print(f"  submit to durable (queue of 64 full): p50 {_p(durable, 50):.0f} ms, p95 {_p(durable, 95):.0f} ms")

        paced_n = 500
        paced = _phase(url, runs, lambda k: [f"p{k}-{i:07d}" for i in range(paced_n)], 50.0)
        durable = [ms for r in paced for ms in r["durable_ms"]]
        write_ms = [ms for r in paced for ms in r["write_ms"]]
        print(f"paced line: {args.stations} stations x {paced_n} results at 50/s each")
        print(f"  write latency per result: p50 {_p(write_ms, 50):.1f} ms, p95 {_p(write_ms, 95):.1f} ms")
        print(f"  submit to durable: p50 {_p(durable, 50):.0f} ms, p95 {_p(durable, 95):.0f} ms "
              f"(the writer gathers up to 0.5 s or 16 results per transaction)")  # fmt: skip

        shared = [f"shared-{i:07d}" for i in range(n // 4)]
        overlap = _phase(url, runs, lambda k: shared, None)
        stored = sum(r["written"] for r in overlap)
        skipped = sum(r["elsewhere"] for r in overlap)
        print(f"overlap: {args.stations} stations x the same {len(shared)} images at once: "
              f"{stored} stored, {skipped} found stored by another station")  # fmt: skip

        expected = args.stations * (n + paced_n) + len(shared)
        (total, distinct) = rows(url, "SELECT COUNT(*), COUNT(DISTINCT result_key) FROM inspections")[0]
        defects = rows(url, "SELECT COUNT(*) FROM defects")[0][0]
        verdict = "nothing lost, nothing twice" if total == distinct == expected else "MISMATCH"
        print(f"rows: {total} ({distinct} distinct keys; {expected} expected): {verdict}; {defects} defects")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
