"""The desktop application driven as a user would, offscreen, on the embedded model."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from inspector.engine.image import write_image
from inspector.recipe import load_recipe
from inspector.synthetic.demo_product import demo_background, demo_reference, demo_scene, write_demo_recipe

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Four fresh demo parts, two of them defective."""
    folder = tmp_path_factory.mktemp("parts")
    rng = np.random.default_rng(5150)
    background = demo_background()
    for k in range(4):
        write_image(folder / f"part{k}.png", demo_scene(rng, defective=k % 2 == 1, background=background).image)
    return folder


def view_point(view, x, y) -> QPoint:
    return view.mapFromScene(x, y)


def drag(qtbot, view, start, end) -> None:
    viewport = view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=view_point(view, *start))
    qtbot.mouseMove(viewport, pos=view_point(view, (start[0] + end[0]) / 2, (start[1] + end[1]) / 2))
    qtbot.mouseMove(viewport, pos=view_point(view, *end))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=view_point(view, *end))


def test_author_a_recipe_from_a_reference_image(window, qtbot, tmp_path):
    write_image(tmp_path / "good.png", demo_reference().image)
    recipes = window.recipes
    window.tabs.setCurrentWidget(recipes)
    recipes.new_from_image(tmp_path / "good.png")
    qtbot.waitUntil(lambda: recipes.segmentation is not None, timeout=60_000)

    drag(qtbot, recipes.view, (170, 150), (470, 330))  # part box tool is the default
    assert len(recipes.recipe.part.boxes) == 1
    x1, _, _, y2 = recipes.recipe.part.boxes[0]
    assert abs(x1 - 170) <= 3 and abs(y2 - 330) <= 3

    for action in recipes.tools.actions():
        if action.data() == "normal point":
            action.trigger()
    qtbot.mouseClick(recipes.view.viewport(), Qt.MouseButton.LeftButton, pos=view_point(recipes.view, 300, 280))
    (point,) = recipes.recipe.normal_points
    assert abs(point[0] - 300) <= 2 and abs(point[1] - 280) <= 2

    recipes.view.setFocus()
    qtbot.keyClick(recipes.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert recipes.recipe.normal_points == ()
    qtbot.keyClick(recipes.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert recipes.recipe.normal_points == (point,)

    recipes.form.allowed.setValue(1)
    recipes.form.changed_fraction.setValue(0.1)
    recipes.form.differences.setChecked(True)
    assert recipes.recipe.defects.allowed == 1 and recipes.recipe.defects.changed_fraction == 0.1
    qtbot.waitUntil(lambda: "part:" in recipes.showing.text(), timeout=60_000)  # the preview applied the prompts

    assert recipes.save_as(tmp_path / "recipes" / "good.yaml")
    saved = load_recipe(tmp_path / "recipes" / "good.yaml")
    assert saved.part.boxes == recipes.recipe.part.boxes and saved.defects.allowed == 1
    assert saved.defects.changed_fraction == 0.1 and saved.defects.differences
    assert saved.reference_image == "../good.png"


def test_the_reference_preview_is_segmented_as_inspection_sees_it(window, qtbot, tmp_path, monkeypatch):
    recipe = write_demo_recipe(tmp_path / "recipe")  # the network sees the part's window
    recipes = window.recipes
    window.tabs.setCurrentWidget(recipes)
    assert recipes.open_recipe(recipe)
    qtbot.waitUntil(lambda: recipes.segmentation is not None, timeout=60_000)
    x1, y1, *_ = recipes.recipe.part.boxes[0]
    ox, oy = recipes.segmentation.origin
    assert 0 < ox <= x1 and 0 < oy <= y1  # the window around the part box, not the whole image
    assert recipes.segmentation.image_size == (640, 480)  # placed back in the reference's pixels
    qtbot.waitUntil(lambda: "part: " in recipes.showing.text(), timeout=60_000)  # painted on a worker
    assert "selects nothing" not in recipes.showing.text()

    # A second part box moves the window; only the window is segmented again.
    segmenter = recipes._segmenter(recipes.recipe)
    segmented = []
    original = segmenter.segment

    def counted(image, **settings):
        segmented.append(image.shape)
        return original(image, **settings)

    monkeypatch.setattr(segmenter, "segment", counted)
    before = recipes.segmentation
    drag(qtbot, recipes.view, (20, 20), (90, 90))
    qtbot.waitUntil(lambda: recipes.segmentation is not before and recipes._worker is None, timeout=60_000)
    assert recipes.segmentation.origin < before.origin
    assert len(segmented) == 1 and segmented[0][:2] != (480, 640)


def test_test_on_folder_fills_a_verdict_table(window, qtbot, parts):
    recipe = write_demo_recipe(parts.parent / "recipe-dry")
    recipes = window.recipes
    window.tabs.setCurrentWidget(recipes)
    assert recipes.open_recipe(recipe)
    recipes.dry_run.run_folder(parts)
    qtbot.waitUntil(lambda: "(done)" in recipes.dry_run.summary.text(), timeout=120_000)
    table = recipes.dry_run.table
    assert table.rowCount() == 4
    assert {table.item(r, 1).text() for r in range(4)} <= {"PASS", "FAIL", "ERROR"}
    table.selectRow(1)
    qtbot.waitUntil(lambda: "part1.png" in recipes.showing.text(), timeout=60_000)
    assert recipes.back.isEnabled()
    recipes.back.trigger()
    assert recipes.showing.text().startswith("Reference of")


def test_operate_runs_a_folder_and_history_reviews_it(window, qtbot, parts, tmp_path):
    recipe = write_demo_recipe(tmp_path / "recipe")
    operate = window.operate
    operate.recipe_edit.setText(str(recipe))
    operate.source_edit.setText(str(parts))
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    assert operate.start_button.text() == "Stop"
    qtbot.waitUntil(lambda: not operate.running, timeout=180_000)
    assert operate.counters["Inspected"].text() == "4"
    fails = int(operate.counters["Fail"].text())
    assert operate.rejects.reject_count() == fails
    assert operate.verdict.text() in ("PASS", "FAIL", "ERROR")

    history = window.history
    with qtbot.waitSignal(history.refreshed, timeout=60_000):  # read on a worker thread
        window.tabs.setCurrentWidget(history)
    assert history.table.rowCount() == 4
    fail_rows = [r for r in range(4) if history.table.item(r, 3).text() == "FAIL"]
    if not fail_rows:
        pytest.skip("the model passed every part of this set; nothing to review")
    qtbot.keyClicks(history.review_panel.operator, "Ana")  # reviews are stored under a name
    history.table.selectRow(fail_rows[0])
    qtbot.waitUntil(history.false_alarm.isEnabled, timeout=60_000)  # once its picture is up
    qtbot.mouseClick(history.false_alarm, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: history.table.item(fail_rows[0], 5).text() == "false alarm", timeout=60_000)
    with sqlite3.connect(tmp_path / "results.db") as conn:
        assert conn.execute("SELECT decision, operator FROM reviews").fetchall() == [("false_alarm", "Ana")]
    worker = history.export(tmp_path / "report.html", "html")
    qtbot.waitUntil(lambda: worker.isFinished(), timeout=60_000)
    assert "Inspection report" in (tmp_path / "report.html").read_text()


def test_f5_stops_a_run_on_the_model(window, qtbot, parts, tmp_path):
    """How many images a stopped run finishes is test_operate's (held at a known image);
    here, that a hot folder, which runs until stopped, stops from a text field."""
    import shutil

    recipe = write_demo_recipe(tmp_path / "recipe")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    shutil.copy(parts / "part0.png", incoming / "part0.png")
    operate = window.operate
    operate.recipe_edit.setText(str(recipe))
    operate.source_edit.setText(f"watch:{incoming}")
    operate.start()
    qtbot.waitUntil(lambda: operate.counters["Inspected"].text() == "1", timeout=180_000)
    qtbot.keyClick(operate.source_edit, Qt.Key.Key_F5)  # F5 starts and stops, even from a text field
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
    assert "stopped" in window.status.text()


def test_core_errors_show_in_the_window_not_as_a_crash(window, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema_version: 1\nproduct: {name: X}\n")
    window.operate.recipe_edit.setText(str(broken))
    window.operate.source_edit.setText(str(tmp_path))
    window.operate.start()
    assert not window.operate.running
    assert "product.reference_image" in window.status.toolTip()


def test_a_recipe_that_cannot_be_saved_marks_the_field_and_names_the_file(window, tmp_path):
    recipe = write_demo_recipe(tmp_path / "recipe")
    recipes = window.recipes
    assert recipes.open_recipe(str(recipe))
    recipes.form.min_area.setValue(5000)
    recipes.form.max_area.setValue(100)
    target = tmp_path / "copy.yaml"
    assert not recipes.save_as(target)
    assert not target.exists()
    assert recipes.form.min_area.toolTip() == "5000 is larger than defects.max_area 100"  # the field is marked
    assert f"Not saved: {target}: defects.min_area: 5000 is larger" in window.status.toolTip()


def test_unsaved_recipe_edits_are_kept_saved_or_discarded_as_the_user_answers(window, tmp_path, monkeypatch):
    first = load_recipe(write_demo_recipe(tmp_path / "first"))
    second = write_demo_recipe(tmp_path / "second")
    recipes = window.recipes
    assert recipes.open_recipe(str(first.source))
    assert not recipes.unsaved()
    recipes.form.allowed.setValue(3)
    assert recipes.unsaved()
    answers = []

    def answer(text):
        monkeypatch.setattr(type(recipes), "ask_unsaved", lambda self: answers.append(text) or text)

    answer("cancel")
    assert not recipes.open_recipe(str(second))  # the edits stay, and so does the recipe
    assert recipes.recipe.source == first.source and recipes.recipe.defects.allowed == 3
    answer("save")
    assert recipes.open_recipe(str(second)) and recipes.recipe.source == second.resolve()
    assert load_recipe(first.source).defects.allowed == 3  # saved before the other opened
    recipes.form.allowed.setValue(4)
    answer("cancel")
    window.close()
    assert window.isVisible()  # closing waits for an answer
    answer("discard")
    window.close()
    assert not window.isVisible() and load_recipe(second).defects.allowed != 4
    assert answers == ["cancel", "save", "cancel", "discard"]


def test_a_recipe_whose_reference_is_gone_says_so_over_the_empty_view(window, qtbot, tmp_path):
    good = write_demo_recipe(tmp_path / "good")
    broken = write_demo_recipe(tmp_path / "broken")
    recipe = load_recipe(broken)
    recipe.reference_path.unlink()
    recipes = window.recipes
    assert recipes.open_recipe(str(good))
    qtbot.waitUntil(lambda: "segments" in recipes.showing.text(), timeout=60_000)
    assert recipes.open_recipe(str(broken))
    assert recipes.showing.text() == f"Reference of {recipe.name}: cannot be read ({recipe.reference_path})"


def test_a_run_on_a_folder_without_images_says_so(window, qtbot, tmp_path):
    recipe = write_demo_recipe(tmp_path / "recipe")
    (tmp_path / "empty").mkdir()
    window.operate.recipe_edit.setText(str(recipe))
    window.operate.source_edit.setText(str(tmp_path / "empty"))
    window.operate.start()
    qtbot.waitUntil(lambda: not window.operate.running, timeout=60_000)
    assert "0 inspected" in window.status.toolTip() and "the source held no image files" in window.status.toolTip()


def test_a_mistyped_video_file_is_named_in_the_window_not_waited_for(window, tmp_path):
    recipe = write_demo_recipe(tmp_path / "recipe")
    window.operate.recipe_edit.setText(str(recipe))
    window.operate.source_edit.setText(str(tmp_path / "lien.mp4"))
    window.operate.start()
    assert not window.operate.running
    assert "lien.mp4: no such video file" in window.status.toolTip()


def test_operate_runs_a_video_source(window, qtbot, tmp_path):
    import cv2

    recipe = write_demo_recipe(tmp_path / "recipe")
    rng = np.random.default_rng(31337)
    video = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for k in range(3):
        writer.write(demo_scene(rng, defective=k == 1, background=demo_background()).image)
    writer.release()
    operate = window.operate
    operate.recipe_edit.setText(str(recipe))
    operate.source_edit.setText(str(video))
    operate.start()
    qtbot.waitUntil(lambda: not operate.running, timeout=180_000)
    assert operate.counters["Inspected"].text() == "3"
    assert "ended" in operate.source_status.text()


def test_the_application_starts_from_its_entry_point_and_shows_a_recipe(qapp, tmp_path, monkeypatch):
    import sys

    from inspector.gui.app import build_parser, run_gui

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # run_gui installs its own; undone after
    from PySide6.QtCore import QSettings

    # The window's settings in the test's folder, not the user's: it remembers its job and shift.
    ini = str(tmp_path / "settings.ini")
    monkeypatch.setattr("inspector.gui.main_window.QSettings", lambda *_: QSettings(ini, QSettings.Format.IniFormat))

    shot = tmp_path / "window.png"
    args = build_parser().parse_args(
        ["--recipe", "recipes/demo-label.yaml", "--db", str(tmp_path / "r.db"), "--screenshot", str(shot)]
    )
    assert run_gui(args) == 0
    assert shot.stat().st_size > 10_000  # the window was drawn
    assert "job=" in (tmp_path / "settings.ini").read_text()  # and remembered its job there


def test_operate_watches_a_hot_folder_and_sorts_it_as_the_command_line_does(window, qtbot, parts, tmp_path):
    import shutil

    recipe = write_demo_recipe(tmp_path / "recipe")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for name in ("part0.png", "part1.png"):
        shutil.copy(parts / name, incoming / name)
    operate = window.operate
    qtbot.keyClicks(operate.recipe_edit, str(recipe))
    qtbot.keyClicks(operate.source_edit, f"watch:{incoming}")
    qtbot.mouseClick(operate.sort_files, Qt.MouseButton.LeftButton)
    assert operate.sort_files.isChecked()
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: operate.counters["Inspected"].text() == "2", timeout=180_000)
    qtbot.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)  # Stop
    qtbot.waitUntil(lambda: not operate.running, timeout=60_000)
    assert not list(incoming.glob("*.png"))  # both filed away
    sorted_files = sorted(p.relative_to(incoming).parts[0] for p in incoming.glob("*/*.png"))
    assert len(sorted_files) == 2 and set(sorted_files) <= {"pass", "fail", "error"}
    with sqlite3.connect(tmp_path / "results.db") as conn:
        stored = [path for (path,) in conn.execute("SELECT image_path FROM inspections")]
    assert sorted(stored) == sorted(str(p) for p in incoming.glob("*/*.png"))  # where they went
