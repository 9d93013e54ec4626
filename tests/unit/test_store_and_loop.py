"""The inspection loop into a real SQLite database, with a perfect stand-in segmenter."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest

from inspector.engine.image import write_image
from inspector.engine.pipeline import InspectionPipeline
from inspector.errors import EngineError, StoreError
from inspector.services.inspection_loop import RunEvents, RunSettings, run_inspection
from inspector.sources.files import FileSource
from inspector.sources.frame import Frame
from inspector.store.database import SCHEMA_REVISION, open_store
from inspector.store.repository import add_review
from tests.helpers import FramesFrom, TruthSegmenter, fixtured, fixtured_recipe, rows
from tests.unit.test_image_io import png_claiming


@pytest.fixture
def line(tmp_path):
    """A reference, a recipe and a folder of 3 good and 3 defective parts."""
    recipe, reference = fixtured_recipe(tmp_path)
    scenes = [fixtured(10 + k, defective=k % 2 == 1) for k in range(6)]
    folder = tmp_path / "parts"
    for k, scene in enumerate(scenes):
        write_image(folder / f"p{k}.png", scene.image)
    pipeline = InspectionPipeline(recipe, segmenter=TruthSegmenter([reference, *scenes]))
    return pipeline, folder, tmp_path


@pytest.mark.parametrize(
    ("ahead", "register_ahead"), [(0, None), (2, None), (2, 3)], ids=["in-line", "read-ahead", "registered-ahead"]
)
def test_every_image_gets_one_row_and_fail_images_get_pictures(line, ahead, register_ahead, db_url):
    pipeline, folder, _tmp = line
    (folder / "zero.png").write_bytes(b"")
    (folder / "text.png").write_text("hello")
    (folder / "huge.png").write_bytes(png_claiming(100_000, 100_000))  # OpenCV refuses it by raising
    store = open_store(db_url)
    settings = RunSettings(read_ahead=ahead, register_ahead=register_ahead)
    summary = run_inspection(pipeline, store, FileSource([folder]), settings)
    store.close()
    assert summary.status == "finished"
    assert (summary.counts["PASS"], summary.counts["FAIL"], summary.counts["ERROR"]) == (3, 3, 3)
    found = rows(db_url, "SELECT image_path, verdict, error, overlay_path, defect_count FROM inspections")
    assert len(found) == 9
    by_name = {path.rsplit("/", 1)[-1]: rest for path, *rest in found}
    assert by_name["zero.png"][0] == "ERROR" and "empty file" in by_name["zero.png"][1]
    assert by_name["huge.png"][0] == "ERROR" and "too large to decode" in by_name["huge.png"][1]
    for name in ("p1.png", "p3.png", "p5.png"):
        verdict, _, overlay, count = by_name[name]
        assert verdict == "FAIL" and count >= 1 and overlay and Path(overlay).exists()
    crops = rows(db_url, "SELECT crop_path FROM defects")
    assert crops and all(c and c.endswith(".png") for (c,) in crops)
    (status,) = rows(db_url, "SELECT status FROM runs")
    assert status == ("finished",)


def test_results_whose_pictures_cannot_be_written_are_stored_without_them(line, caplog, db_url):
    pipeline, folder, tmp = line
    (tmp / "images").write_text("a file where the pictures' folder would go")
    store = open_store(db_url, images_dir=tmp / "images")
    summary = run_inspection(pipeline, store, FileSource([folder]))
    store.close()
    assert (summary.status, summary.counts["PASS"], summary.counts["FAIL"]) == ("finished", 3, 3)
    assert summary.pictures_lost == 3 and summary.to_dict()["pictures_lost"] == 3
    found = rows(db_url, "SELECT verdict, overlay_path FROM inspections")
    assert sorted(v for v, _ in found) == ["FAIL"] * 3 + ["PASS"] * 3
    assert all(overlay is None for _, overlay in found)
    assert rows(db_url, "SELECT count(*), count(crop_path) FROM defects")[0][1] == 0
    assert "stored without (some of) its pictures" in caplog.text and "3 results were stored without" in caplog.text


class CopyableTruthSegmenter(TruthSegmenter):
    """The perfect stand-in, shared by every copy of the pipeline; notes which threads segment."""

    def __init__(self, scenes) -> None:
        super().__init__(scenes)
        self.threads: set[str] = set()

    def segment(self, image, **options):
        self.threads.add(threading.current_thread().name)
        return super().segment(image, **options)

    def runtime(self):
        return replace(super().runtime(), replicable=True)

    def replica(self, *, threads=None):
        return self


def test_two_images_at_once_are_stored_in_the_frames_order_with_the_same_results(tmp_path):
    from inspector.engine.threads import inference_threads

    recipe, reference = fixtured_recipe(tmp_path)
    scenes = [fixtured(20 + k, defective=k % 3 == 0) for k in range(9)]
    folder = tmp_path / "parts"
    for k, scene in enumerate(scenes):
        write_image(folder / f"p{k}.png", scene.image)
    (folder / "p9.png").write_text("not an image")
    segmenter = CopyableTruthSegmenter([reference, *scenes])
    pipeline = InspectionPipeline(recipe, segmenter=segmenter)
    threads_before = inference_threads()
    outcomes = {}
    for workers in (1, 2):
        store = open_store(str(tmp_path / f"w{workers}.db"))
        seen = []
        summary = run_inspection(
            pipeline,
            store,
            FileSource([folder]),
            RunSettings(workers=workers),
            RunEvents(result=lambda frame, result, image, seen=seen: seen.append((frame.name, result.verdict))),
        )
        store.close()
        assert summary.status == "finished" and summary.inspected == 10
        stored = rows(
            tmp_path / f"w{workers}.db", "SELECT image_path, verdict, defect_count FROM inspections ORDER BY id"
        )
        assert [(path, verdict) for path, verdict, _ in stored] == seen
        outcomes[workers] = stored
    assert [name.rsplit("/", 1)[-1] for name, *_ in outcomes[2]] == [f"p{k}.png" for k in range(10)]
    assert outcomes[2] == outcomes[1]
    assert [verdict for _, verdict, _ in outcomes[2]] == ["FAIL", "PASS", "PASS"] * 3 + ["ERROR"]
    workers_threads = {name for name in segmenter.threads if name.startswith("inspector-prepare")}
    assert len(workers_threads) == 2  # two images at a time, each on its own thread
    assert inference_threads() == threads_before  # the workers' thread counts do not outlive the run


def test_a_reference_that_cannot_be_prepared_makes_each_image_an_error_when_two_run_at_once(tmp_path):
    recipe, _ = fixtured_recipe(tmp_path)
    folder = tmp_path / "parts"
    for k in range(3):
        write_image(folder / f"p{k}.png", fixtured(30 + k).image)
    pipeline = InspectionPipeline(recipe, segmenter=CopyableTruthSegmenter([]))

    def broken(image, **options):  # the reference's segmentation fails, so no copy can share it
        raise EngineError("the network gave no output for the reference image")

    pipeline.segmenter.segment = broken
    store = open_store(str(tmp_path / "r.db"))
    summary = run_inspection(pipeline, store, FileSource([folder]), RunSettings(workers=2))
    store.close()
    assert summary.status == "finished" and summary.counts["ERROR"] == 3
    errors = rows(tmp_path / "r.db", "SELECT error FROM inspections")
    assert all("no output for the reference image" in error for (error,) in errors)


@pytest.mark.parametrize("ahead", [0, 2], ids=["in-line", "read-ahead"])
def test_rerun_skips_what_is_done_and_force_redoes_it(line, ahead, db_url):
    pipeline, folder, _tmp = line
    store = open_store(db_url)

    def run(force=False):
        return run_inspection(pipeline, store, FileSource([folder]), RunSettings(force=force, read_ahead=ahead))

    first, second, third = run(), run(), run(force=True)
    store.close()
    assert first.inspected == 6 and second.inspected == 0 and second.skipped == 6 and third.inspected == 6
    assert rows(db_url, "SELECT COUNT(*) FROM inspections") == [(12,)]


@pytest.mark.parametrize("ahead", [0, 2], ids=["in-line", "read-ahead"])
def test_cancel_stops_within_one_image_and_keeps_what_was_done(line, ahead, db_url):
    pipeline, folder, _tmp = line
    cancel = threading.Event()
    store = open_store(db_url)
    summary = run_inspection(
        pipeline,
        store,
        FileSource([folder]),
        RunSettings(read_ahead=ahead),
        RunEvents(result=lambda frame, result, image: cancel.set()),
        cancel=cancel,
    )
    store.close()
    assert summary.status == "stopped" and summary.inspected == 1
    assert rows(db_url, "SELECT COUNT(*) FROM inspections") == [(1,)]
    assert not any(t.name == "inspector-read-ahead" for t in threading.enumerate())


def test_a_live_source_that_ends_because_it_was_stopped_is_a_stopped_run(line, db_url):
    pipeline, folder, _tmp = line
    cancel = threading.Event()

    def live_frames():  # as a camera's frames end once Stop stops the camera
        frames = FileSource([folder]).frames()
        yield next(frames)
        cancel.set()

    store = open_store(db_url)
    summary = run_inspection(pipeline, store, FramesFrom(live_frames(), finite=False), cancel=cancel)
    store.close()
    assert summary.status == "stopped" and summary.inspected == 1
    assert rows(db_url, "SELECT status FROM runs") == [("stopped",)]


class CountingFrame(Frame):
    decoded: ClassVar[list[str]] = []

    def image(self):
        CountingFrame.decoded.append(self.name)
        return super().image()


def test_reading_ahead_skips_done_images_without_decoding_them_and_reports_a_failing_source(line, db_url):
    pipeline, folder, _tmp = line
    store = open_store(db_url)
    run_inspection(pipeline, store, FileSource([folder]))
    CountingFrame.decoded.clear()
    again = [CountingFrame(f.name, f.sha256, f.path, f.data) for f in FileSource([folder]).frames()]
    summary = run_inspection(pipeline, store, FramesFrom(again))
    assert summary.skipped == 6 and CountingFrame.decoded == []

    def broken_source():
        yield from FileSource([folder / "p0.png"]).frames()
        raise OSError("camera cable pulled")

    with pytest.raises(OSError, match="cable"):
        run_inspection(pipeline, store, FramesFrom(broken_source()), RunSettings(force=True))
    store.close()


def test_reviews_are_stored_against_inspections(line, db_url):
    pipeline, folder, _tmp = line
    store = open_store(db_url)
    run_inspection(pipeline, store, FileSource([folder / "p1.png"]))
    with store.session() as session, session.begin():
        add_review(session, inspection_id=1, decision="false_alarm", operator="ana")
        with pytest.raises(ValueError, match="maybe"):
            add_review(session, inspection_id=1, decision="maybe")
    store.close()
    assert rows(db_url, "SELECT decision, operator FROM reviews") == [("false_alarm", "ana")]


def test_new_database_is_migrated_and_reopened_without_change(tmp_path):
    open_store(str(tmp_path / "a.db")).close()
    version = rows(tmp_path / "a.db", "SELECT version_num FROM alembic_version")
    open_store(str(tmp_path / "a.db")).close()
    assert rows(tmp_path / "a.db", "SELECT version_num FROM alembic_version") == version == [(SCHEMA_REVISION,)]
    assert rows(tmp_path / "a.db", "PRAGMA journal_mode") == [("wal",)]


def test_a_newer_database_schema_is_refused(tmp_path):
    open_store(str(tmp_path / "a.db")).close()
    with sqlite3.connect(tmp_path / "a.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="newer"):
        open_store(str(tmp_path / "a.db"))


def test_unwritable_database_locations_are_clear_errors(tmp_path):
    with pytest.raises(StoreError, match="cannot create the database folder"):
        open_store("/proc/inspector-test/results.db")
    with pytest.raises(StoreError, match="cannot use this database URL"):
        open_store("nosuchdriver+://x")


def test_a_folder_that_disappears_mid_run_becomes_errors_and_the_run_goes_on(line, db_url):
    import shutil

    pipeline, folder, tmp = line
    later = tmp / "later"
    shutil.copytree(folder, later)
    store = open_store(db_url)
    seen = []

    def vanish(frame, result, image):
        seen.append(frame.name)
        if len(seen) == 2:
            shutil.rmtree(later)  # the second folder goes away while the first is inspected

    summary = run_inspection(pipeline, store, FileSource([folder, later]), events=RunEvents(result=vanish))
    store.close()
    assert summary.status == "finished"
    assert summary.counts["PASS"] + summary.counts["FAIL"] == 6
    errors = rows(db_url, "SELECT image_path, error FROM inspections WHERE verdict = 'ERROR'")
    assert errors and all("later" in path and error for path, error in errors)


def test_a_file_name_that_is_not_utf8_is_stored_escaped_and_costs_no_other_row(line, db_url):
    import os

    pipeline, folder, _tmp = line
    weird = os.fsdecode(b"caf\xe9.png")  # as a name copied from an old Windows share arrives
    (folder / "p0.png").rename(folder / weird)
    store = open_store(db_url)
    summary = run_inspection(pipeline, store, FileSource([folder]))
    store.close()
    assert summary.status == "finished" and summary.inspected == 6
    stored = [path for (path,) in rows(db_url, "SELECT image_path FROM inspections")]
    assert len(stored) == 6
    (escaped,) = [path for path in stored if "caf" in path]
    assert escaped.endswith("caf\\xe9.png")  # its byte, recoverable from the row


def test_a_full_disk_is_the_error_a_run_ends_with_not_the_bookkeeping_after_it(line, monkeypatch, db_url):
    import sqlalchemy

    from inspector.services import inspection_loop, writer

    pipeline, folder, _tmp = line
    store = open_store(db_url)

    def disk_full(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(writer, "add_inspections", disk_full)
    monkeypatch.setattr(writer.time, "sleep", lambda s: None)  # no waiting between the write's retries
    monkeypatch.setattr(inspection_loop, "finish_run", disk_full)  # the disk is still full at the end
    with pytest.raises(StoreError, match="results could not be written: database or disk is full"):
        run_inspection(pipeline, store, FileSource([folder]), RunSettings(read_ahead=0))
    store.close()
