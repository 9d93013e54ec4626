"""A folder inspected two images at a time on the real model: the same results, in order."""

from __future__ import annotations

import sqlite3

import numpy as np

from inspector.engine.image import write_image
from inspector.engine.pipeline import InspectionPipeline
from inspector.recipe.io import load_recipe
from inspector.services.inspection_loop import RunSettings, run_inspection
from inspector.sources.files import FileSource
from inspector.store.database import open_store
from inspector.synthetic.demo_product import demo_background, demo_scene, write_demo_recipe


def test_a_replica_of_the_network_segments_as_the_original(embedded_segmenter):
    image = demo_scene(np.random.default_rng(3), defective=True, background=demo_background()).image
    replica = embedded_segmenter.replica()
    mine, its = embedded_segmenter.segment(image), replica.segment(image)
    assert replica.identity == embedded_segmenter.identity
    assert len(mine) == len(its) and np.array_equal(mine.masks, its.masks)
    np.testing.assert_allclose(mine.boxes, its.boxes, atol=1e-3)


def test_two_at_once_gives_the_verdicts_and_defects_of_one_at_a_time(tmp_path, embedded_segmenter):
    recipe = load_recipe(write_demo_recipe(tmp_path / "recipe"))
    pipeline = InspectionPipeline(recipe, segmenter=embedded_segmenter)
    rng, background = np.random.default_rng(11), demo_background()
    folder = tmp_path / "parts"
    for k in range(8):
        write_image(folder / f"part{k}.jpg", demo_scene(rng, defective=k % 2 == 0, background=background).image)
    stored = {}
    for workers in (1, 2):
        db = tmp_path / f"w{workers}.db"
        store = open_store(str(db))
        summary = run_inspection(pipeline, store, FileSource([folder]), RunSettings(workers=workers))
        store.close()
        assert summary.status == "finished" and summary.inspected == 8
        with sqlite3.connect(db) as conn:
            stored[workers] = conn.execute(
                "SELECT image_path, verdict, defect_count FROM inspections ORDER BY id"
            ).fetchall()
    assert [path.rsplit("/", 1)[-1] for path, *_ in stored[2]] == [f"part{k}.jpg" for k in range(8)]
    assert stored[2] == stored[1]
    assert [verdict for _, verdict, _ in stored[2]].count("FAIL") >= 3
