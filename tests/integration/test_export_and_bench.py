"""``inspector export`` (ONNX Runtime backend) and ``inspector bench``, run for real."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from inspector.cli import main
from inspector.engine.rules import pairwise_iou
from inspector.engine.segmenter import FastSAMSegmenter
from inspector.errors import EngineError
from inspector.synthetic.demo_product import demo_scene

pytestmark = pytest.mark.model


def test_onnx_backend_needs_an_export_and_then_agrees_with_torch(capsys):
    image = demo_scene(np.random.default_rng(31), defective=True).image
    with pytest.raises(EngineError, match="inspector export"):
        FastSAMSegmenter(device="cpu", backend="onnx").segment(image)

    assert main(["export"]) == 0
    assert "exported inspector-seg-n.pt" in capsys.readouterr().out
    automatic = FastSAMSegmenter(device="cpu")  # auto: the export is there, so it is used
    torch_masks = FastSAMSegmenter(device="cpu", backend="torch").segment(image).masks
    onnx_masks = automatic.segment(image).masks
    assert automatic.runtime().backend == "onnx" and len(onnx_masks) == len(torch_masks) > 0
    assert pairwise_iou(torch_masks, onnx_masks).max(axis=1).min() >= 0.95


def test_bench_measures_the_pipeline_beside_ultralytics(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "--sizes", "0.3MP", "--images", "3", "--models", "embedded", "--work", str(tmp_path)]
    assert main([*args, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "embedded 0.3MP" in printed and "cold start" in printed
    run = json.loads(out.read_text())["runs"]["embedded 0.3MP"]
    assert run["images"] == 3 and run["baseline_masks_per_image"] > 0
    assert set(run["ratios"]) == {
        "around_network_to_forward",
        "around_network_cpu_to_forward",
        "around_network_cpu_to_network_forward",
        "throughput_to_network_rate",
        "throughput_to_network_workers_rate",
        "baseline_to_pipeline",
    }
    # Where the pipeline inspects several images at once, the network alone is measured so too.
    if run["workers"] > 1:
        assert run["network_workers"]["workers"] == run["workers"] and run["network_workers"]["rate_ips"] > 0
        assert run["ratios"]["throughput_to_network_workers_rate"] > 0
    else:
        assert run["network_workers"] is None and run["ratios"]["throughput_to_network_workers_rate"] is None
    # Reading and storing cost CPU time on their own threads, at most their wall time.
    cpu = run["pipeline_cpu_ms_per_image"]
    assert cpu["read"] > 0 and 0 < cpu["store"] <= run["pipeline_stages_ms"]["store"]["p50"]
    assert run["pipeline_stages_ms"]["inference"]["p50"] > 0 and run["peak_rss_mb"]["pipeline"] > 0
    # The cold start, step by step.
    phases = run["cold_start_phases_s"]
    assert list(phases)[-1] == "first image" and all(s >= 0 for s in phases.values())
    assert sum(phases.values()) == pytest.approx(run["cold_start_s"], abs=0.01)


def test_a_higher_resolution_camera_gives_the_same_verdicts_in_its_own_pixels(tmp_path, embedded_segmenter):
    from inspector.bench.dataset import bench_set
    from inspector.engine.pipeline import InspectionPipeline
    from inspector.recipe.io import load_recipe

    small_recipe, small = bench_set(tmp_path, "0.3MP", 4)
    large_recipe, large = bench_set(tmp_path, "2MP", 4)  # the same parts, 2.55 times the pixels
    factor = 1632 / 640
    low = InspectionPipeline(load_recipe(small_recipe), segmenter=embedded_segmenter)
    high = InspectionPipeline(load_recipe(large_recipe), segmenter=embedded_segmenter)
    for a, b in zip(small, large, strict=True):
        ra, rb = low.inspect_file(a), high.inspect_file(b)
        assert rb.image_size == (1632, 1224)
        assert ra.verdict == rb.verdict, (a.name, ra.findings, rb.findings)
        for fa in ra.findings:  # every defect found at 0.3 MP is found at the same place at 2 MP
            x1, y1, x2, y2 = np.array(fa.box) * factor
            assert any(x1 < b[2] and b[0] < x2 and y1 < b[3] and b[1] < y2 for b in (f.box for f in rb.findings))


def test_a_large_image_is_decoded_smaller_and_reported_in_its_own_pixels(tmp_path, embedded_segmenter):
    from inspector.bench.dataset import bench_set
    from inspector.engine.image import read_image
    from inspector.engine.pipeline import InspectionPipeline
    from inspector.recipe.io import load_recipe
    from inspector.services.inspection_loop import RunEvents, run_inspection
    from inspector.sources.files import FileSource
    from inspector.store.database import open_store

    recipe, images = bench_set(tmp_path, "2MP", 4)
    pipeline = InspectionPipeline(load_recipe(recipe), segmenter=embedded_segmenter)
    assert pipeline.decode_side() == 800  # what the aligner works at; 1632 px decode at 816
    store = open_store(str(tmp_path / "results.db"), images_dir=tmp_path / "pictures")
    seen = {}
    try:
        run_inspection(
            pipeline,
            store,
            FileSource(images),
            events=RunEvents(
                result=lambda frame, result, image: seen.__setitem__(Path(frame.name).name, (result, image.shape))
            ),
        )
    finally:
        store.close()
    assert len(seen) == 4
    for path in images:
        result, shape = seen[path.name]
        assert shape[:2] == (612, 816) and result.image_size == (1632, 1224)
        full = pipeline.inspect(read_image(path))  # the same image decoded in full
        assert result.verdict == full.verdict, (path.name, result.findings, full.findings)
        for f in full.findings:
            x1, y1, x2, y2 = f.box
            assert any(x1 < b[2] and b[0] < x2 and y1 < b[3] and b[1] < y2 for b in (g.box for g in result.findings))
    with sqlite3.connect(tmp_path / "results.db") as db:
        rows = db.execute("select width, height, overlay_path from inspections where verdict = 'FAIL'").fetchall()
    assert rows and all(r[:2] == (1632, 1224) for r in rows)
    assert read_image(rows[0][2]).shape[:2] == (612, 816)  # the overlay is drawn on what was decoded
