"""Teaching a recipe in the Recipes tab, testing it on a labelled folder and moving the
threshold, as an engineer does: real cookies, the real feature network and segmenter."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt

from inspector.recipe.io import load_recipe
from tests.helpers import shared_data

COOKIES = shared_data("lookout_cookies", "cookie")

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(COOKIES is None, reason="the shared cookie photographs (../shared/data) are not here"),
]


def _cookies(tmp_path) -> tuple[Path, Path]:
    """Four good cookies to teach from, and a labelled test folder (good/ and cracked/)."""
    good = tmp_path / "good"
    good.mkdir()
    for name in ("normal-1", "normal-10", "normal-11", "normal-12"):
        shutil.copy(COOKIES / "train" / "good" / f"{name}.jpg", good)
    test = tmp_path / "test"
    for kind, names in (("good", ["test-normal-2", "test-normal-3"]), ("cracked", ["anomaly-5", "anomaly-9"])):
        (test / kind).mkdir(parents=True)
        for name in names:
            shutil.copy(COOKIES / "test" / kind / f"{name}.jpg", test / kind)
    return good, test


def test_teach_then_test_on_a_labelled_folder_then_drag_the_threshold(window, qtbot, tmp_path):
    good, test = _cookies(tmp_path)
    recipes = window.recipes
    window.tabs.setCurrentWidget(recipes)
    recipes.new_from_image(good / "normal-1.jpg")
    assert recipes.save_as(tmp_path / "cookie.yaml")
    assert "Not taught" in recipes.normal.status.text()

    worker = recipes.normal.teach(good)
    assert worker is not None and not recipes.normal.teach_button.isEnabled()  # one teaching at a time
    qtbot.waitUntil(lambda: recipes.recipe is not None and recipes.recipe.taught, timeout=120_000)
    assert load_recipe(tmp_path / "cookie.yaml").taught
    assert "Taught from 4 good image(s)" in recipes.normal.status.text()
    taught_threshold = recipes.normal.histogram.threshold
    assert taught_threshold is not None and taught_threshold > 0

    recipes.dry_run.run_folder(test)
    qtbot.waitUntil(lambda: "(done)" in recipes.dry_run.summary.text(), timeout=120_000)
    summary = recipes.dry_run.summary.text()
    assert "recall 100 % of 2 defective" in summary and "false rejects 0 % of 2 good" in summary, summary
    assert "image AUROC 1.000" in summary
    scores = recipes.dry_run.scores()
    assert len(scores["good"]) == 2 and len(scores["defective"]) == 2

    recipes.dry_run.table.selectRow(2)  # a cracked one: its heat map and outline over it
    qtbot.waitUntil(lambda: "anomaly score" in recipes.showing.text(), timeout=60_000)
    overlay = recipes.view.overlay
    assert not overlay.isNull() and overlay.pixelColor(overlay.width() // 2, overlay.height() * 3 // 4).alpha() > 0

    # Drag the threshold line far right: every tested cookie would pass.
    histogram = recipes.normal.histogram
    span = histogram._range()
    start = QPoint(round(histogram._x_of(taught_threshold, span)), histogram.height() // 2)
    end = QPoint(histogram.width() - 3, histogram.height() // 2)
    qtbot.mousePress(histogram, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(histogram, end)
    qtbot.mouseRelease(histogram, Qt.MouseButton.LeftButton, pos=end)
    assert histogram.threshold > max(scores["defective"])
    verdicts = [recipes.dry_run.table.item(row, 1).text() for row in range(4)]
    assert verdicts == ["PASS"] * 4  # judged again without the network
    assert "recall 0 % of 2 defective" in recipes.dry_run.summary.text()
    assert recipes.normal.use_button.isEnabled()
    qtbot.mouseClick(recipes.normal.use_button, Qt.MouseButton.LeftButton)
    assert recipes.recipe.anomaly.threshold == pytest.approx(histogram.threshold)
    assert recipes.undo_stack.undoText() == "set anomaly threshold" and recipes.unsaved()
    recipes.undo_stack.undo()
    assert recipes.recipe.anomaly.threshold is None
