"""How the benchmark pools repeated measurements and states the targets' ratios."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.bench.runner import merged, summarise, table


def _pipeline(throughput: float, inference: list[float], *, cold: float, peak: float) -> dict:
    return {
        "images": 3,
        "backend": "torch",
        "throughput_ips": throughput,
        "stages_ms": {"read": [4.0] * len(inference), "inference": inference, "rules": [2.0] * len(inference)},
        "totals_ms": [x + 6.0 for x in inference],
        "store_ms_per_image": 10.0,
        "store_cpu_ms_per_image": 5.0,
        "read_cpu_ms_per_image": 3.0,
        "cold_start_s": cold,
        "cold_start_phases_s": {"start and imports": 1.0, "first image": cold - 1.0},
        "rss_mb": [[1, 500.0]],
        "peak_rss_mb": peak,
    }


def test_rounds_pool_samples_take_the_median_rate_and_the_worst_memory():
    rounds = [
        _pipeline(5.0, [100.0, 110.0], cold=4.0, peak=700.0),
        _pipeline(4.0, [150.0], cold=5.0, peak=720.0),
        _pipeline(6.0, [90.0], cold=3.0, peak=710.0),
    ]
    pooled = merged(rounds)
    assert pooled["stages_ms"]["inference"] == [100.0, 110.0, 150.0, 90.0]
    assert pooled["throughput_ips"] == 5.0  # a slow spell in one round does not decide
    assert pooled["peak_rss_mb"] == 720.0
    assert pooled["cold_start_s"] == 4.0 and pooled["cold_start_range_s"] == [3.0, 5.0]
    assert pooled["cold_start_phases_s"] == {"start and imports": 1.0, "first image": 3.0}  # each step's median
    assert merged(rounds[:1]) is rounds[0]
    rounds[0]["verdicts"], rounds[2]["verdicts"] = {"PASS": 4, "FAIL": 4}, {"PASS": 5, "ERROR": 3}
    assert merged(rounds)["verdicts"] == {"PASS": 9, "FAIL": 4, "ERROR": 3}  # every round's images


def test_around_the_network_is_stated_by_wall_time_and_by_cpu_time():
    pipeline = _pipeline(5.0, [100.0, 100.0, 100.0], cold=4.0, peak=700.0)
    network = {"stages_ms": {"inference": [100.0]}, "totals_ms": [110.0]}
    baseline = {"stages_ms": {"total": [250.0]}, "masks_per_image": 9.0, "peak_rss_mb": 600.0}
    ratios = summarise(pipeline, network, baseline)["ratios"]
    assert ratios["around_network_to_forward"] == pytest.approx((4 + 2 + 10) / 100)  # read, rules, store
    assert ratios["around_network_cpu_to_forward"] == pytest.approx((3 + 2 + 5) / 100)
    assert ratios["throughput_to_network_rate"] == pytest.approx(5.0 / 10.0)
    assert ratios["baseline_to_pipeline"] == pytest.approx(250.0 / 200.0)


def test_the_steady_rate_counts_from_each_workers_first_result():
    from inspector.bench.child import steady_rate

    # Two workers, 4 images per second each: results come in pairs every quarter second.
    pairs = [t for k in range(6) for t in (1.0 + 0.25 * k, 1.0 + 0.25 * k + 0.01)]
    assert steady_rate(pairs, 2) == pytest.approx(8.0, rel=0.01)
    # One worker at 5 per second.
    assert steady_rate([2.0 + 0.2 * k for k in range(10)], 1) == pytest.approx(5.0)
    assert steady_rate([3.0], 1) is None and steady_rate([], 2) is None


def test_the_cold_start_phases_add_up_to_the_cold_start():
    from inspector.bench.child import cold_start_phases

    marks = {"start and imports": 10.8, "recipe checked, torch imported": 13.1, "database": 13.2, "network": 13.9}
    phases = cold_start_phases(10.0, marks, 14.3)
    assert list(phases) == [*marks, "first image"]
    assert phases["start and imports"] == pytest.approx(0.8) and phases["first image"] == pytest.approx(0.4)
    assert sum(phases.values()) == pytest.approx(14.3 - 10.0)
    assert cold_start_phases(None, marks, 14.3) is None


def test_cold_start_phases_are_pooled_when_a_round_has_none():
    rounds = [_pipeline(5.0, [100.0], cold=4.0, peak=700.0), _pipeline(5.0, [100.0], cold=6.0, peak=700.0)]
    rounds[0]["cold_start_phases_s"] = None  # e.g. the spawn time was not passed
    assert merged(rounds)["cold_start_phases_s"] == {"start and imports": 1.0, "first image": 5.0}


def test_a_pipeline_whose_every_image_was_an_error_is_a_clear_error():
    from inspector.errors import InspectorError

    pipeline = {**_pipeline(5.0, [], cold=4.0, peak=700.0), "verdicts": {"ERROR": 8}}
    pipeline["stages_ms"] = {"read": [4.0] * 8, "align": [20.0] * 8}
    network = {"stages_ms": {"inference": [100.0]}, "totals_ms": [110.0]}
    baseline = {"stages_ms": {"total": [250.0]}, "masks_per_image": 9.0, "peak_rss_mb": 600.0}
    with pytest.raises(InspectorError, match=r"every image was an ERROR in the pipeline \(verdicts: \{'ERROR': 8\}\)"):
        summarise(pipeline, network, baseline)
    # As many images as workers: every sample is a warm-up, dropped, but nothing failed.
    pipeline = {**_pipeline(5.0, [], cold=4.0, peak=700.0), "verdicts": {"PASS": 1, "FAIL": 1}}
    entry = summarise(pipeline, network, baseline)
    assert entry["ratios"]["throughput_to_network_rate"] == pytest.approx(0.5)
    # Results that all came at once give no rate: said, not a TypeError.
    with pytest.raises(InspectorError, match="no rate: the results of 3 images came all at once"):
        summarise({**pipeline, "throughput_ips": None}, network, baseline)
    # ... and the printed table says so instead of failing after the measurements.
    machine = {"cpus": 2, "torch_threads": 2, "device": "cpu"}
    results = {"machine": machine, "images_per_size": 2, "date": "today", "runs": {"embedded 0.3MP": entry}}
    printed = table(results).splitlines()
    assert "n/a" in printed[3]
    # ... and that, with so few images per worker, its rate is rough.
    results["runs"]["embedded 0.3MP"]["workers"] = 2
    assert "only 3 images on 2 workers: its rate is rough (use --images 8 or more)" in table(results)


def test_a_size_that_could_not_be_measured_is_a_row_that_says_why(monkeypatch, tmp_path):
    from inspector.bench import runner

    def measured(mode, recipe, images, **_):
        size = Path(images).parent.name.split("-")[0]
        if mode == "pipeline":
            verdicts = {"ERROR": 3} if size == "2MP" else {"PASS": 2, "FAIL": 1}
            return {**_pipeline(5.0, [100.0], cold=4.0, peak=700.0), "verdicts": verdicts}
        if mode == "network":
            return {"stages_ms": {"inference": [100.0]}, "totals_ms": [110.0]}
        return {"stages_ms": {"total": [250.0]}, "masks_per_image": 9.0, "peak_rss_mb": 600.0}

    monkeypatch.setattr(runner, "run_child", measured)
    monkeypatch.setattr(runner, "bench_set", lambda work, size, n, **_: (None, [work / f"{size}-x" / "images" / "a"]))
    model = runner.Model("embedded", "inspector-seg-n")
    results = runner.benchmark(tmp_path, sizes=["0.3MP", "2MP", "12MP"], images=3, models=[model], say=lambda _: None)
    assert list(results["runs"]) == ["embedded 0.3MP", "embedded 2MP", "embedded 12MP"]  # the sizes after it too
    assert "every image was an ERROR" in results["runs"]["embedded 2MP"]["error"]
    printed = table(results)
    assert "embedded 2MP          not measured: every image was an ERROR" in printed
    assert "embedded 12MP" in printed.split("Stage p50")[1]
