"""Store and forward to a real central PostgreSQL server: in order, exactly once, nothing
lost while the server is down."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from inspector.engine.image import write_image
from inspector.engine.pipeline import InspectionPipeline
from inspector.services.forwarding import Forwarder
from inspector.services.inspection_loop import RunEvents, RunSettings, run_inspection
from inspector.sources.files import FileSource
from inspector.sources.frame import Frame
from inspector.store.database import open_store
from tests.helpers import FramesFrom, TruthSegmenter, fixtured, fixtured_recipe, rows
from tests.unit.test_store_integrity import line, pipeline_for  # noqa: F401  (fixture)

SAME_ROWS = (
    "SELECT i.image_sha256, i.image_path, i.verdict, i.defect_count, i.result_key, r.station, r.status "
    "FROM inspections i JOIN runs r ON r.id = i.run_id ORDER BY i.id"
)


@pytest.fixture
def central(postgres_server):
    url = postgres_server.create_database()
    yield postgres_server, url
    if not postgres_server.root.exists():
        return
    postgres_server.drop_database(url)


def frames_of(folder):
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        yield Frame(name=str(path), path=path, data=data, sha256=hashlib.sha256(data).hexdigest())


def test_a_stations_results_reach_the_central_database_once_and_in_order(line, central, tmp_path):  # noqa: F811
    _, url = central
    _, _, folder, _ = line
    local = open_store(str(tmp_path / "station.db"))
    run_inspection(pipeline_for(line), local, FileSource([folder]), RunSettings(station="line 3", read_ahead=0))
    forwarder = Forwarder(local, url)
    assert forwarder.waiting() == 6
    state = forwarder.forward_all()
    assert state.reachable and state.waiting == 0
    assert forwarder.forward_once() == 0  # nothing twice
    forwarder.close()
    local.close()
    assert rows(url, SAME_ROWS) == rows(tmp_path / "station.db", SAME_ROWS)
    assert rows(url, "SELECT name FROM stations") == [("line 3",)]
    assert rows(url, "SELECT COUNT(*) FROM recipe_snapshots") == [(1,)]


def test_results_wait_while_the_server_is_down_and_go_when_it_is_back(line, central, tmp_path):  # noqa: F811
    """The server stopped in the middle of a run and started again: the station goes on,
    says so, and every result arrives once, in order."""
    server, url = central
    recipe, scenes, folder, _ = line
    more = [fixtured(40 + k, defective=k % 3 == 0) for k in range(6)]
    for k, scene in enumerate(more):  # a second batch of parts, arriving while the server is down
        write_image(folder / f"q{k}.png", scene.image)
    pipeline = InspectionPipeline(recipe, segmenter=TruthSegmenter([*scenes, *more]))
    local = open_store(str(tmp_path / "station.db"))
    told = []
    noticed = threading.Event()

    def tell(state):
        told.append(state)
        if not state.reachable:
            noticed.set()

    forwarder = Forwarder(local, url, on_state=tell)
    finish = forwarder.start(every=0.05)
    seen = []

    def on_result(frame, result, image):
        seen.append(frame.name)
        if len(seen) == 4:
            server.halt()  # mid-run
        if len(seen) == 9:
            assert noticed.wait(30)  # the station found it down while it went on inspecting
            server.resume()

    summary = run_inspection(
        pipeline, local, FramesFrom(frames_of(folder), finite=False), RunSettings(station="line 3"),
        RunEvents(result=on_result),
    )  # fmt: skip
    final = finish()
    local.close()
    assert summary.inspected == 12 and summary.status == "finished"
    assert final.reachable and final.waiting == 0
    assert any(not state.reachable for state in told)  # the operator was told it was down...
    assert told[-1].reachable  # ...and that it is back
    assert rows(url, SAME_ROWS) == rows(tmp_path / "station.db", SAME_ROWS)
    assert rows(url, "SELECT status FROM runs") == [("finished",)]  # the run's end followed its rows


def test_a_batch_sent_but_not_noted_is_not_sent_twice(line, central, tmp_path, monkeypatch):  # noqa: F811
    _, url = central
    _, _, folder, _ = line
    local = open_store(str(tmp_path / "station.db"))
    run_inspection(pipeline_for(line), local, FileSource([folder]), RunSettings(read_ahead=0))
    forwarder = Forwarder(local, url)
    real = local.transaction

    def station_stops(doing):  # the station dies after the central commit, before noting it
        raise KeyboardInterrupt

    monkeypatch.setattr(local, "transaction", station_stops)
    with pytest.raises(KeyboardInterrupt):
        forwarder.forward_once()
    assert rows(url, "SELECT COUNT(*) FROM inspections") == [(6,)]
    monkeypatch.setattr(local, "transaction", real)
    assert forwarder.forward_all().waiting == 0
    forwarder.close()
    local.close()
    assert rows(url, SAME_ROWS) == rows(tmp_path / "station.db", SAME_ROWS)
    assert rows(url, "SELECT COUNT(*) FROM runs") == [(1,)]


def test_camera_frames_without_a_content_hash_are_forwarded_once_each(line, central, tmp_path):  # noqa: F811
    _, url = central
    _, _, folder, _ = line
    frames = [Frame(name=f"camera:0#{k}", pixels=f.image()) for k, f in enumerate(frames_of(folder))]
    local = open_store(str(tmp_path / "station.db"))
    run_inspection(pipeline_for(line), local, FramesFrom(frames, finite=False), RunSettings(save_frames="none"))
    forwarder = Forwarder(local, url)
    forwarder.forward_all()
    local.close()
    forwarder.close()
    assert rows(url, "SELECT COUNT(*), COUNT(DISTINCT result_key) FROM inspections") == [(6, 6)]


def test_the_command_line_sends_results_to_the_central_database_and_says_so(line, central, tmp_path, capsys):  # noqa: F811
    from inspector.cli import main

    _, url = central
    recipe, _, folder, _ = line
    status = main(["run", "--recipe", str(recipe.source), str(folder / "p0.png"), "--db", str(tmp_path / "s.db"),
                   "--central", url, "--station", "line 3"])  # fmt: skip
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "central database: up to date" in out.out
    assert rows(url, "SELECT COUNT(*) FROM inspections") == [(1,)]
    assert main(["run", "--recipe", str(recipe.source), str(folder), "--db", url, "--central", url]) == 2
    assert "must be this station's own SQLite file" in capsys.readouterr().err


def test_what_waits_can_be_sent_later_by_hand(line, central, tmp_path, capsys):  # noqa: F811
    from inspector.cli import main

    server, url = central
    _, _, folder, _ = line
    local = open_store(str(tmp_path / "s.db"))
    run_inspection(pipeline_for(line), local, FileSource([folder]), RunSettings(read_ahead=0))
    local.close()
    server.halt()
    try:
        assert main(["db", "forward", "--db", str(tmp_path / "s.db"), "--central", url]) == 1
        said = capsys.readouterr().out
        assert "unreachable" in said and "6 results kept here" in said
    finally:
        server.resume()
    assert main(["db", "forward", "--db", str(tmp_path / "s.db"), "--central", url]) == 0
    assert "up to date" in capsys.readouterr().out
    assert rows(url, "SELECT COUNT(*) FROM inspections") == [(6,)]


def test_a_central_report_shows_the_defects_where_the_stations_files_are_out_of_reach(line, central, tmp_path):  # noqa: F811
    import shutil

    from inspector.cli import main

    _, url = central
    _, _, folder, _ = line
    local = open_store(str(tmp_path / "station.db"), images_dir=tmp_path / "station-images")
    run_inspection(pipeline_for(line), local, FileSource([folder]), RunSettings(read_ahead=0))
    Forwarder(local, url).forward_all()
    local.close()
    shutil.rmtree(tmp_path / "station-images")  # another machine: the station's pictures are not here
    shutil.rmtree(folder)
    out = tmp_path / "central.html"
    assert main(["report", "--db", url, "--out", str(out)]) == 0
    html = out.read_text()
    defects = rows(url, "SELECT COUNT(*) FROM defects")[0][0]
    assert defects > 0 and html.count('class="crop"') == defects
    assert "image not available" not in html


def test_an_error_replaced_after_it_was_sent_is_replaced_centrally_too(line, central, tmp_path):  # noqa: F811
    _, url = central
    _, _, folder, _ = line
    whole = (folder / "p1.png").read_bytes()
    path = tmp_path / "drop" / "slow.png"

    def state(data):
        return Frame(name=str(path), path=path, data=data, sha256=hashlib.sha256(data).hexdigest())

    local = open_store(str(tmp_path / "station.db"))
    forwarder = Forwarder(local, url)
    sent_between = []

    def on_result(frame, result, image):
        if result.verdict == "ERROR":  # once the writer has stored it, send it on
            deadline = time.monotonic() + 30
            while not rows(tmp_path / "station.db", "SELECT 1 FROM inspections") and time.monotonic() < deadline:
                time.sleep(0.05)
            sent_between.append(forwarder.forward_all())
            assert rows(url, "SELECT verdict FROM inspections") == [("ERROR",)]  # the partial file's ERROR is there

    frames = [state(whole[: len(whole) // 2]), state(whole)]
    run_inspection(
        pipeline_for(line), local, FramesFrom(frames, finite=False), RunSettings(), RunEvents(result=on_result)
    )
    final = forwarder.forward_all()
    forwarder.close()
    local.close()
    assert final.waiting == 0
    assert rows(url, SAME_ROWS) == rows(tmp_path / "station.db", SAME_ROWS)
    assert [v for (_, _, v, *_) in rows(url, SAME_ROWS)] == ["FAIL"]


def test_a_new_station_database_never_collides_with_what_an_old_one_sent(line, central, tmp_path):  # noqa: F811
    _, url = central
    _, _, folder, _ = line
    for name in ("first.db", "second.db"):  # the same station, a database started afresh
        frames = [Frame(name=f"camera:0#{k}", pixels=f.image()) for k, f in enumerate(frames_of(folder))]
        local = open_store(str(tmp_path / name))
        run_inspection(pipeline_for(line), local, FramesFrom(frames, finite=False), RunSettings(station="line 3"))
        run_inspection(pipeline_for(line), local, FileSource([folder]), RunSettings(station="line 3", force=True))
        forwarder = Forwarder(local, url)
        assert forwarder.forward_all().waiting == 0
        forwarder.close()
        local.close()
    assert rows(url, "SELECT COUNT(*) FROM inspections") == [(24,)]


def test_after_the_central_database_is_restored_everything_can_be_offered_again(line, central, tmp_path, capsys):  # noqa: F811
    from inspector.cli import main

    _, url = central
    _, _, folder, _ = line
    local = open_store(str(tmp_path / "s.db"))
    run_inspection(pipeline_for(line), local, FileSource([folder]), RunSettings(read_ahead=0))
    local.close()
    assert main(["db", "forward", "--db", str(tmp_path / "s.db"), "--central", url]) == 0
    engine_rows = rows(url, "SELECT COUNT(*) FROM inspections")
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as connection:  # as if restored from a backup older than the last results
        connection.exec_driver_sql("DELETE FROM inspections WHERE id > 2")
    engine.dispose()
    assert engine_rows == [(6,)]
    assert main(["db", "forward", "--db", str(tmp_path / "s.db"), "--central", url]) == 0  # it believes all sent
    assert rows(url, "SELECT COUNT(*) FROM inspections") == [(2,)]
    assert main(["db", "forward", "--db", str(tmp_path / "s.db"), "--central", url, "--again"]) == 0
    assert rows(url, "SELECT COUNT(*) FROM inspections") == [(6,)]


def test_a_station_restarting_while_the_server_is_away_runs_the_version_it_pulled_before(central, tmp_path, capsys):
    from inspector.cli import main
    from inspector.services.publishing import publish

    server, url = central
    recipe, _ = fixtured_recipe(tmp_path / "src")
    store = open_store(url)
    publish(store, recipe.source)
    store.close()
    write_image(tmp_path / "part.png", fixtured(12).image)
    command = [
        "run",
        "--product",
        "Label",
        str(tmp_path / "part.png"),
        "--db",
        str(tmp_path / "s.db"),
        "--central",
        url,
    ]
    assert main(command) == 0
    server.halt()
    try:
        assert main([*command, "--force"]) == 0  # pulled before: runs it, results wait
        err = capsys.readouterr().err
        assert "running version 1 as pulled before" in err and "unreachable" in err
    finally:
        server.resume()
    assert rows(tmp_path / "s.db", "SELECT recipe_version FROM runs") == [(1,), (1,)]


def test_reviews_made_at_the_station_follow_their_results(line, central, tmp_path):  # noqa: F811
    from inspector.store.repository import add_review

    _, url = central
    _, _, folder, _ = line
    local = open_store(str(tmp_path / "station.db"))
    run_inspection(pipeline_for(line), local, FileSource([folder]), RunSettings(read_ahead=0))
    forwarder = Forwarder(local, url)
    forwarder.forward_all()
    ((fail_id,), *_) = rows(tmp_path / "station.db", "SELECT id FROM inspections WHERE verdict = 'FAIL' ORDER BY id")
    (defect_id,) = rows(tmp_path / "station.db", f"SELECT MAX(id) FROM defects WHERE inspection_id = {fail_id}")[0]
    with local.transaction("reviewing") as session:  # after the results were sent, as in History
        add_review(session, inspection_id=fail_id, decision="confirmed", operator="ana", note="burr")
        add_review(session, inspection_id=fail_id, defect_id=defect_id, decision="false_alarm", operator="ana")
    assert forwarder.forward_all().waiting == 0
    assert forwarder.forward_reviews() == 0  # nothing twice
    forwarder.close()
    local.close()
    reviewed = (
        "SELECT i.image_sha256, r.decision, r.operator, r.note, r.defect_id IS NULL, d.area "
        "FROM reviews r JOIN inspections i ON i.id = r.inspection_id LEFT JOIN defects d ON d.id = r.defect_id "
        "ORDER BY r.id"
    )
    assert rows(url, reviewed) == rows(tmp_path / "station.db", reviewed)
    assert len(rows(url, reviewed)) == 2
