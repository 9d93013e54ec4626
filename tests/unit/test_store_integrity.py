"""Nothing lost, nothing stored twice: concurrent runs, broken files, databases that are
deleted, damaged or locked, files sorted only once their rows are durable."""

from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
import subprocess
import sys
import threading

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError

from inspector.engine.image import write_image
from inspector.engine.pipeline import InspectionPipeline
from inspector.errors import StoreError
from inspector.services.inspection_loop import RunSettings, run_inspection
from inspector.sources.files import FileSource
from inspector.sources.frame import Frame
from inspector.sources.hotfolder import HotFolderSource
from inspector.store.database import open_store
from tests.helpers import FramesFrom, TruthSegmenter, fixtured, fixtured_recipe, rows


@pytest.fixture
def line(tmp_path):
    """A recipe, its scenes, and a folder of 3 good and 3 defective parts."""
    recipe, reference = fixtured_recipe(tmp_path)
    scenes = [fixtured(10 + k, defective=k % 2 == 1) for k in range(6)]
    folder = tmp_path / "parts"
    for k, scene in enumerate(scenes):
        write_image(folder / f"p{k}.png", scene.image)
    return recipe, [reference, *scenes], folder, tmp_path


def pipeline_for(line) -> InspectionPipeline:
    recipe, scenes, _, _ = line
    return InspectionPipeline(recipe, segmenter=TruthSegmenter(scenes))


def test_two_runs_on_one_database_at_once_store_each_image_once(line, db_url):
    _, _, folder, _tmp = line
    db = db_url
    open_store(db).close()
    start = threading.Barrier(2)
    summaries = []

    def station():
        store = open_store(db)
        pipeline = pipeline_for(line)
        pipeline.decode_side()  # the reference prepared before the race starts
        start.wait()
        summaries.append(run_inspection(pipeline, store, FileSource([folder]), RunSettings(read_ahead=0)))
        store.close()

    threads = [threading.Thread(target=station) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert rows(db, "SELECT COUNT(*), COUNT(DISTINCT image_sha256) FROM inspections") == [(6, 6)]
    assert sum(s.inspected for s in summaries) == 6  # what each run reports is what it stored
    assert sum(s.skipped for s in summaries) == 6


def test_a_second_writer_skips_a_row_stored_between_its_look_and_its_insert(line, monkeypatch, db_url):
    """The race two stations run: both see an image as new at the start, and the second
    writer's look comes before the first one's commit. The database refuses the second
    row; the writer looks again and skips it, without failing the run."""
    from inspector.services import inspection_loop, writer
    from inspector.store.repository import InspectedBefore

    pipeline = pipeline_for(line)
    _, _, folder, _tmp = line
    store = open_store(db_url)
    run_inspection(pipeline, store, FileSource([folder]), RunSettings(read_ahead=0))
    looks = []
    real = writer.already_stored

    def looks_too_early(session, records):  # the first look misses the rows, as in the race
        looks.append(len(records))
        return set() if len(looks) == 1 else real(session, records)

    monkeypatch.setattr(inspection_loop, "inspected_before", lambda session, **_: InspectedBefore())
    monkeypatch.setattr(writer, "already_stored", looks_too_early)
    summary = run_inspection(pipeline, store, FileSource([folder]), RunSettings(read_ahead=0))
    store.close()
    assert len(looks) >= 2  # refused by the database, then looked again
    assert summary.status == "finished" and summary.inspected == 0 and summary.skipped == 6
    assert rows(db_url, "SELECT COUNT(*) FROM inspections") == [(6,)]


def test_the_database_refuses_a_second_row_for_one_image_recipe_and_model(line, db_url):
    pipeline = pipeline_for(line)
    _, _, folder, _ = line
    store = open_store(db_url)
    run_inspection(pipeline, store, FileSource([folder]), RunSettings(read_ahead=0))
    store.close()
    engine = create_engine(db_url)
    with engine.begin() as conn, pytest.raises(IntegrityError, match=r"uq_inspections_result|UNIQUE"):
        conn.exec_driver_sql(
            "INSERT INTO inspections (run_id, recipe_id, recipe_sha256, model_sha256, product, image_path, "
            "image_sha256, verdict, defect_count, timings, total_ms, inspected_at, result_key) "
            "SELECT run_id, recipe_id, recipe_sha256, model_sha256, product, 'copy.png', image_sha256, verdict, "
            "defect_count, timings, total_ms, inspected_at, result_key FROM inspections LIMIT 1"
        )
    engine.dispose()


def test_empty_and_identical_broken_files_each_get_their_row_once(line, db_url):
    pipeline = pipeline_for(line)
    _, _, folder, _tmp = line
    for k in range(5):
        (folder / f"empty{k}.png").write_bytes(b"")
    for k in range(3):
        (folder / f"broken{k}.png").write_bytes(b"\x89PNG\r\n\x1a\n broken the same way")
    store = open_store(db_url)
    first = run_inspection(pipeline, store, FileSource([folder]), RunSettings(read_ahead=0))
    again = run_inspection(pipeline, store, FileSource([folder]), RunSettings(read_ahead=0))
    store.close()
    assert first.counts["ERROR"] == 8 and first.inspected == 14 and first.skipped == 0
    assert again.inspected == 0 and again.skipped == 14
    errors = rows(db_url, "SELECT image_path FROM inspections WHERE verdict = 'ERROR'")
    assert sorted(p.rsplit("/", 1)[-1] for (p,) in errors) == sorted(
        [f"empty{k}.png" for k in range(5)] + [f"broken{k}.png" for k in range(3)]
    )


def test_a_file_that_changes_after_an_error_counts_only_in_its_final_state(line, db_url):
    """A writer pausing longer than the hot folder's settling time: the partial file is
    an ERROR, the complete one PASS, and only the PASS stays."""
    pipeline = pipeline_for(line)
    _, _, folder, tmp = line
    whole = (folder / "p0.png").read_bytes()
    path = tmp / "drop" / "slow.png"

    def frame(data):
        return Frame(name=str(path), path=path, data=data, sha256=hashlib.sha256(data).hexdigest())

    states = [frame(whole[: len(whole) // 3]), frame(whole[: 2 * len(whole) // 3]), frame(whole)]
    store = open_store(db_url)
    summary = run_inspection(pipeline, store, FramesFrom(states, finite=False))
    store.close()
    assert summary.counts["ERROR"] == 2 and summary.counts["PASS"] == 1  # what it saw, as it saw it
    assert rows(db_url, "SELECT image_path, verdict FROM inspections") == [(str(path), "PASS")]


def test_a_database_deleted_during_a_run_stops_it_with_a_clear_error(line):
    pipeline = pipeline_for(line)
    _, _, folder, tmp = line
    db = tmp / "r.db"
    store = open_store(str(db))
    files = sorted(folder.iterdir())

    def frames():
        for k, path in enumerate(files):
            if k == 3:
                for leftover in tmp.glob("r.db*"):
                    leftover.unlink()  # someone cleans up the database mid-run
            data = path.read_bytes()
            yield Frame(name=str(path), path=path, data=data, sha256=hashlib.sha256(data).hexdigest())

    with pytest.raises(StoreError, match="the database was deleted while results were being written"):
        run_inspection(pipeline, store, FramesFrom(frames(), finite=False))
    store.close()


def test_a_database_replaced_during_a_run_is_noticed(line):
    pipeline = pipeline_for(line)
    _, _, folder, tmp = line
    db = tmp / "r.db"
    store = open_store(str(db))
    open_store(str(tmp / "other.db")).close()
    os.replace(tmp / "other.db", db)  # a restore over the file the run has open
    with pytest.raises(StoreError, match="replaced by another file"):
        run_inspection(pipeline, store, FileSource([folder]), RunSettings(read_ahead=0))
    store.close()


def test_sorted_files_move_only_once_their_rows_are_stored_and_a_restart_sorts_the_rest(line, monkeypatch):
    pipeline = pipeline_for(line)
    _, _, folder, tmp = line
    db = tmp / "r.db"
    store = open_store(str(db))
    moved_with_row = []
    real_relocate = HotFolderSource.relocate

    def relocate(self, frame, destination):
        stored = rows(db, f"SELECT COUNT(*) FROM inspections WHERE image_path = '{destination}'")[0][0]
        moved_with_row.append(stored == 1)
        if frame.path.name != "p5.png":  # the watcher is killed before the last move
            real_relocate(self, frame, destination)

    monkeypatch.setattr(HotFolderSource, "relocate", relocate)
    watcher = HotFolderSource(folder, poll=0.05, settle=0.0, idle_timeout=0.5, sort=True)
    run_inspection(pipeline, store, watcher)
    assert moved_with_row == [True] * 6
    assert (folder / "p5.png").exists()
    monkeypatch.setattr(HotFolderSource, "relocate", real_relocate)
    watcher = HotFolderSource(folder, poll=0.05, settle=0.0, idle_timeout=0.5, sort=True)
    restarted = run_inspection(pipeline, store, watcher)
    store.close()
    assert restarted.skipped == 1 and restarted.inspected == 0
    assert not (folder / "p5.png").exists() and (folder / "fail" / "p5.png").exists()
    assert rows(db, "SELECT COUNT(*) FROM inspections") == [(6,)]
    assert sorted(p.name for p in (folder / "pass").iterdir()) == ["p0.png", "p2.png", "p4.png"]


def test_a_damaged_database_is_said_to_be_damaged_and_not_written(line):
    from inspector.cli import main

    pipeline = pipeline_for(line)
    _, _, folder, tmp = line
    db = tmp / "r.db"
    store = open_store(str(db))
    run_inspection(pipeline, store, FileSource([folder]), RunSettings(read_ahead=0))
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'inspections'").fetchone()
    assert pages > root
    with open(db, "r+b") as f:  # the inspections table's first page overwritten
        f.seek((root - 1) * 4096)
        f.write(b"\xa5" * 4096)
    before = db.read_bytes()
    with pytest.raises(StoreError, match="the database file is damaged"):
        store = open_store(str(db))
        try:
            run_inspection(pipeline, store, FileSource([folder]), RunSettings(read_ahead=0, force=True))
        finally:
            store.close()
    assert main(["report", "--db", str(db), "--out", str(tmp / "r.html")]) == 2
    assert db.read_bytes() == before


def test_opening_waits_for_a_lock_held_by_another_program(tmp_path):
    db = tmp_path / "r.db"
    open_store(str(db)).close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")  # a backup tool's mode: its lock blocks readers too
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sqlite3, time\nc = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(2); c.execute('COMMIT')\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    store = open_store(str(db))  # waits instead of failing
    store.close()
    holder.wait()


def test_a_report_leaves_the_journal_mode_of_the_database_as_it_was(line):
    from inspector.cli import main

    pipeline = pipeline_for(line)
    _, _, folder, tmp = line
    db = tmp / "r.db"
    store = open_store(str(db))
    run_inspection(pipeline, store, FileSource([folder]), RunSettings(read_ahead=0))
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    assert main(["report", "--db", str(db), "--out", str(tmp / "r.html")]) == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://station@127.0.0.1:1/results?password=s3cret", "sqlite:////x.db?token=s3cret&x=:port"],
)
def test_a_password_in_the_query_of_a_url_is_never_printed(url, capsys):
    from inspector.cli import main

    main(["report", "--db", url, "--out", "r.html"])
    err = capsys.readouterr().err
    assert err and "s3cret" not in err


def test_text_postgresql_would_refuse_is_stored_escaped_or_refused_up_front(line, db_url, tmp_path):
    from inspector.cli import main
    from inspector.errors import RecipeError
    from inspector.recipe.io import load_recipe

    pipeline = pipeline_for(line)
    recipe_path = line[0].source
    store = open_store(db_url)
    frames = [Frame(name="odd.png", error="odd.png: the camera sent \x00\x00 where the header goes")]
    summary = run_inspection(pipeline, store, FramesFrom(frames, finite=False))
    store.close()
    assert summary.counts["ERROR"] == 1
    assert rows(db_url, "SELECT error FROM inspections") == [
        ("odd.png: the camera sent \\x00\\x00 where the header goes",)
    ]
    long_name = recipe_path.read_text().replace("name: Label", "name: " + "L" * 201)
    (tmp_path / "long.yaml").write_text(long_name)
    with pytest.raises(RecipeError, match=r"product.name: at most 200 characters, got 201"):
        load_recipe(tmp_path / "long.yaml")
    with pytest.raises(SystemExit) as refused:  # argparse's usage error
        main(["run", "--recipe", str(recipe_path), "--station", "S" * 201, str(line[2])])
    assert refused.value.code == 2


def test_a_sorted_file_written_again_before_its_move_stays_to_be_inspected_again(line, tmp_path):
    _, _, folder, _ = line
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.png").write_bytes((folder / "p0.png").read_bytes())
    watcher = HotFolderSource(drop, poll=0.05, settle=0.0, idle_timeout=0.5, sort=True)
    (frame,) = list(itertools.islice(watcher.frames(), 1))
    (drop / "a.png").write_bytes((folder / "p1.png").read_bytes())  # the producer writes it again
    watcher.relocate(frame, watcher.destination(frame, "PASS"))
    assert (drop / "a.png").read_bytes() == (folder / "p1.png").read_bytes()
    assert not (drop / "pass").exists()
