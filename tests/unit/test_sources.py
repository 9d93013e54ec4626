"""Cameras (stood in for by video files), hot folders and their failure modes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspector.engine.image import write_image
from inspector.errors import SourceError
from inspector.sources.camera import CameraSource
from inspector.sources.files import FileSource
from inspector.sources.hotfolder import HotFolderSource


def write_video(path, count: int, *, size=(160, 120)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    assert writer.isOpened()
    for k in range(count):
        frame = np.full((size[1], size[0], 3), 40, np.uint8)
        cv2.putText(frame, str(k), (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        writer.write(frame)
    writer.release()


def test_a_video_file_yields_every_frame_or_every_nth(tmp_path):
    write_video(tmp_path / "line.avi", 12)
    frames = list(CameraSource(str(tmp_path / "line.avi")).frames())
    assert len(frames) == 12
    assert frames[0].name.endswith("#000000") and frames[0].pixels.shape == (120, 160, 3)
    assert len({f.sha256 for f in frames}) == 12
    nth = list(CameraSource(str(tmp_path / "line.avi"), every=4).frames())
    assert [f.name[-2:] for f in nth] == ["00", "04", "08"]


def test_a_live_source_keeps_only_the_latest_frame(tmp_path):
    write_video(tmp_path / "fast.avi", 60)
    source = CameraSource(str(tmp_path / "fast.avi"), live=True, reconnect=False)
    taken = []
    for frame in source.frames():
        taken.append(int(frame.name.rsplit("#", 1)[1]))
        time.sleep(0.05)  # a slow model: the grabber runs ahead, frames are dropped, none queue
    assert taken == sorted(taken) and len(taken) < 60
    assert taken[-1] >= 50 or len(taken) > 1


def test_a_stream_that_drops_is_retried_with_back_off_then_given_up(tmp_path):
    video = tmp_path / "cam.avi"
    write_video(video, 5)
    statuses = []
    source = CameraSource(str(video), live=False, backoff=(0.05, 0.1), max_attempts=2, on_status=statuses.append)
    source.reconnect = True  # a file that ends behaves like a camera that drops
    frames = []
    for frame in source.frames():
        frames.append(frame)
        video.unlink(missing_ok=True)  # the camera is gone: reopening fails from now on
    assert len(frames) == 5
    assert statuses[0] == "connected"
    assert [s for s in statuses if s.startswith("reconnecting")] == [
        "reconnecting in 0.1 s (attempt 1)",
        "reconnecting in 0.1 s (attempt 2)",
    ]
    assert statuses[-2:] == ["gave up after 2 attempts", "ended"]


def test_a_camera_that_is_not_there_yet_is_waited_for(tmp_path):
    target = tmp_path / "later.avi"
    statuses = []
    source = CameraSource(str(target), live=True, backoff=(0.1, 0.3), max_attempts=30, on_status=statuses.append)
    threading.Timer(0.5, write_video, args=(target, 4)).start()
    got = []
    for frame in source.frames():
        got.append(frame)
        if len(got) >= 1:
            source.stop()
    assert got and statuses[0].startswith("reconnecting") and "connected" in statuses


def test_a_missing_video_without_reconnection_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="cannot open"):
        list(CameraSource(str(tmp_path / "none.avi"), live=False, reconnect=False).frames())


def test_a_file_that_opens_but_holds_no_frame_is_a_clear_error(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")  # OpenCV's image-sequence reader opens it
    with pytest.raises(SourceError, match=r"notes\.png: not one frame could be read"):
        list(CameraSource(str(tmp_path / "notes.png")).frames())


def test_a_truncated_video_says_where_it_stopped(tmp_path, caplog):
    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(10):
        writer.write(np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    data = (tmp_path / "v.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])  # as a copy interrupted halfway
    statuses = []
    source = CameraSource(str(tmp_path / "cut.avi"), on_status=statuses.append)
    frames = list(source.frames())
    assert 0 < len(frames) < 10
    assert statuses[-1] == f"ended at frame {len(frames)} of 10: the rest could not be decoded"
    assert "cut.avi: ended at frame" in caplog.text
    assert len(list(CameraSource(str(tmp_path / "v.avi"), on_status=statuses.append).frames())) == 10
    assert statuses[-1] == "ended"


def test_software_trigger_inspects_one_frame_per_press(tmp_path):
    write_video(tmp_path / "t.avi", 30)
    source = CameraSource(str(tmp_path / "t.avi"), trigger="software")
    source.fire()
    frames = list(source.frames())
    assert len(frames) == 1


def test_hot_folder_waits_for_complete_files_and_sorts_them(tmp_path):
    folder = tmp_path / "drop"
    source = HotFolderSource(folder, poll=0.05, settle=0.4, idle_timeout=2.0, sort=True)
    image = cv2.imencode(".png", np.full((50, 60, 3), 99, np.uint8))[1].tobytes()

    def slow_writer():
        time.sleep(0.2)
        with open(folder / "a.png", "wb") as f:  # written in two pieces, 0.3 s apart
            f.write(image[: len(image) // 2])
            f.flush()
            time.sleep(0.3)
            f.write(image[len(image) // 2 :])
        (tmp_path / "b.tmp").write_bytes(image)
        (tmp_path / "b.tmp").rename(folder / "b.png")  # renamed in: complete at once

    threading.Thread(target=slow_writer).start()
    seen = []
    for frame in source.frames():
        seen.append(frame)
        assert frame.image().shape == (50, 60, 3), "a frame must only be read once complete"
        source.relocate(frame, source.destination(frame, "PASS"))
    assert sorted(f.path.name for f in seen) == ["a.png", "b.png"]
    assert sorted(p.name for p in (folder / "pass").iterdir()) == ["a.png", "b.png"]


def test_hot_folder_survives_being_removed_and_recreated(tmp_path):
    import shutil

    folder = tmp_path / "drop"
    source = HotFolderSource(folder, poll=0.05, settle=0.1, idle_timeout=1.5)
    image = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()

    def churn():
        time.sleep(0.2)
        shutil.rmtree(folder)
        time.sleep(0.3)
        folder.mkdir()
        (folder / "new.png").write_bytes(image)

    threading.Thread(target=churn).start()
    names = [f.path.name for f in source.frames()]
    assert names == ["new.png"]


def test_a_folder_that_cannot_be_listed_is_named_and_the_files_after_it_are_still_read(tmp_path, monkeypatch):
    from inspector.sources import files

    folder = tmp_path / "line"
    (folder / "b_sub").mkdir(parents=True)
    for name in ("a.png", "b_sub/x.png", "c.png"):
        write_image(folder / name, np.zeros((8, 8, 3), np.uint8))
    scandir = files.os.scandir

    def refused(path):
        if Path(path).name == "b_sub":
            raise PermissionError(13, "Permission denied")
        return scandir(path)

    monkeypatch.setattr(files.os, "scandir", refused)
    frames = list(FileSource([folder], recursive=True).frames())
    assert [Path(f.name).name for f in frames] == ["a.png", "b_sub", "c.png"]
    assert frames[1].error == f"{folder / 'b_sub'}: cannot list the folder (Permission denied)"
    assert frames[0].error is None and frames[2].error is None


def test_a_hot_folder_that_is_a_file_is_refused_when_named(tmp_path):
    image = tmp_path / "part.png"
    image.write_bytes(b"not a folder")
    with pytest.raises(SourceError, match=r"part.png: is a file, not a folder to watch"):
        HotFolderSource(image)


def test_a_folder_lists_every_format_a_file_named_alone_is_read_in(tmp_path):
    for name in ("a.png", "b.gif", "c.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [Path(f.name).name for f in FileSource([tmp_path]).frames()] == ["a.png", "b.gif", "c.JPG"]


def test_one_dispatch_turns_what_a_user_typed_into_a_source(tmp_path):
    from inspector.sources import CameraSource, SourceOptions, open_source

    camera = open_source("camera:0", SourceOptions(every=3, trigger="software"))
    assert isinstance(camera, CameraSource) and camera.target == 0 and camera.every == 3 and not camera.finite
    assert camera.trigger_mode == "software"
    assert open_source("rtsp://cam1/stream").target == "rtsp://cam1/stream"
    watched = open_source(f"watch:{tmp_path / 'in'}", SourceOptions(sort=True, settle=0.2))
    assert isinstance(watched, HotFolderSource) and watched.sort and watched.settle == 0.2 and not watched.finite
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b").mkdir()
    files = open_source(f"{tmp_path / 'a.png'}; {tmp_path / 'b'}", SourceOptions(recursive=True))
    assert isinstance(files, FileSource) and files.finite and files.recursive
    assert files.paths == [tmp_path / "a.png", tmp_path / "b"]
    (tmp_path / "x y;z.png").write_bytes(b"x")
    assert open_source([str(tmp_path / "x y;z.png")]).paths == [tmp_path / "x y;z.png"]  # a list is taken as it is
    with pytest.raises(SourceError, match=r"^\S*parst: no such file or folder$"):  # mistyped: refused, not a run
        open_source(str(tmp_path / "parst"))
    with pytest.raises(SourceError, match=r"gone\.png: no such file or folder"):
        open_source([str(tmp_path / "a.png"), str(tmp_path / "gone.png")])
    with pytest.raises(SourceError, match=r"line\.mkv: no such video file"):
        open_source(str(tmp_path / "line.mkv"))
    with pytest.raises(SourceError, match=r"clip: no such video file"):
        open_source(f"video:{tmp_path / 'clip'}")


def test_a_source_whose_name_is_too_long_for_the_file_system_is_refused_naming_it(tmp_path):
    from inspector.sources import SourceOptions, open_source

    long_name = str(tmp_path / ("x" * 300 + ".png"))
    with pytest.raises(SourceError, match="File name too long"):
        open_source([long_name], SourceOptions())
