"""GUI responsiveness during a run: does the event loop ever block for more than 50 ms?

Builds the real main window (offscreen), writes folders of fresh demo parts (640x480,
half of them defective), and starts a run in Operate on the demo recipe by clicking
Start, as a user would. Loading the model and inspecting happen on the worker thread;
meanwhile a precise QTimer ticks on the GUI thread every ``--interval`` ms and records
when each tick arrives. A gap between two ticks longer than the interval is time the
event loop could not serve the user (a click, a repaint). A run ends when Operate shows
it is done (Start is back); the Start click itself is inside the measured window.

    .venv/bin/python benchmarks/bench_gui.py [--images 60] [--runs 1] [--interval 10] [--json out.json]

Gaps are also split by phase: "loading" from the click to the first result shown (the
model loads there; torch and ultralytics are imported before the window shows, as the
application does), "inspecting" after it.
With ``--runs 2`` or more, later runs start again in the same window on new parts, as an
operator's next batch would. Also timed: the Start click and every call of Operate's
result handler. Absolute figures depend on the machine's load; compare on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")

from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from inspector.engine.image import write_image
from inspector.engine.segmenter import import_runtime
from inspector.gui.app import settle_heap
from inspector.gui.main_window import MainWindow
from inspector.synthetic.demo_product import demo_background, demo_scene, write_demo_recipe

DEMO_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "demo-label.yaml"
BLOCK_MS = 50.0  # the target: no gap between ticks above this


def write_parts(folder: Path, count: int, seed: int) -> None:
    """Demo parts as ``inspector demo`` writes them: PNG files, every second one defective."""
    rng = np.random.default_rng(seed)
    background = demo_background()
    for k in range(count):
        scene = demo_scene(rng, defective=k % 2 == 1, background=background)
        write_image(folder / f"part_{k:04d}.png", scene.image)


class Probe:
    """Ticks on the GUI thread and times Operate's result handler."""

    def __init__(self, operate, interval_ms: int) -> None:
        self.ticks: list[float] = []
        self.handler_ms: list[float] = []
        self.first_result: float | None = None
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self._wrap_result_handler(operate)

    def _wrap_result_handler(self, operate) -> None:
        # Still a method of the widget, so the worker's signal (connected at Start) stays
        # queued to the GUI thread; the wrapper checks that it is.
        original = operate._on_result

        def timed(_self, *args):
            assert threading.current_thread() is threading.main_thread(), "result handler ran off the GUI thread"
            t0 = time.perf_counter()
            if self.first_result is None:
                self.first_result = t0
            try:
                return original(*args)
            finally:
                self.handler_ms.append((time.perf_counter() - t0) * 1e3)

        operate._on_result = types.MethodType(timed, operate)

    def reset(self) -> None:
        self.ticks.clear()
        self.handler_ms.clear()
        self.first_result = None


def gap_figures(gaps: np.ndarray, interval_ms: int) -> dict:
    if not len(gaps):
        return {"ticks": 0}
    return {
        "ticks": len(gaps) + 1,
        "max_gap_ms": round(float(gaps.max()), 1),
        "p99_gap_ms": round(float(np.percentile(gaps, 99)), 1),
        "median_gap_ms": round(float(np.median(gaps)), 1),
        "gaps_over_50ms": int((gaps > BLOCK_MS).sum()),
        "blocked_ms": round(float(np.clip(gaps - interval_ms, 0, None).sum()), 1),  # beyond the interval
    }


def measure(window: MainWindow, probe: Probe, parts: Path, *, interval_ms: int, timeout_s: float) -> dict:
    """Click Start in Operate on ``parts``, tick until the run is shown done, return its figures."""
    operate = window.operate
    operate.source_edit.setText(str(parts))
    probe.reset()
    loop = QEventLoop()
    operate.running_changed.connect(loop.quit)  # quits on False; True comes before exec()
    deadline = QTimer(singleShot=True, interval=int(timeout_s * 1000))
    deadline.timeout.connect(loop.quit)

    probe.timer.start()
    QTest.qWait(100)  # a few ticks before the click, so that the click's own block is a gap
    started = time.perf_counter()
    QTest.mouseClick(operate.start_button, Qt.MouseButton.LeftButton)
    click_ms = (time.perf_counter() - started) * 1e3
    if not operate.running:
        raise SystemExit(f"bench_gui: the run did not start: {window.status.toolTip()}")
    deadline.start()
    while operate.running and deadline.isActive():
        loop.exec()
    wall_s = time.perf_counter() - started
    QApplication.processEvents()
    probe.ticks.append(time.perf_counter())  # the loop's last stretch counts too
    probe.timer.stop()
    operate.running_changed.disconnect(loop.quit)
    finished = not operate.running
    if not finished:  # timed out: stop the worker before the window goes
        operate.shutdown()

    ticks = np.array(probe.ticks)
    gaps = np.diff(ticks) * 1e3
    first = probe.first_result if probe.first_result is not None else ticks[-1]
    loading = ticks[:-1] < first  # a gap belongs to the phase it starts in
    handler = np.array(probe.handler_ms)
    return {
        "finished": finished,
        "images": int(operate.counters["Inspected"].text()),
        "verdicts": {name: int(operate.counters[name].text()) for name in ("Pass", "Fail", "Error")},
        "status": window.status.text(),
        "wall_s": round(wall_s, 2),
        "first_result_s": round(first - started, 2),
        **gap_figures(gaps, interval_ms),
        "worst_gaps_ms": [round(float(g), 1) for g in np.sort(gaps)[::-1][:5]],
        "phases": {
            "loading": gap_figures(gaps[loading], interval_ms),
            "inspecting": gap_figures(gaps[~loading], interval_ms),
        },
        "start_click_ms": round(click_ms, 1),
        "result_handler_ms": {
            "calls": len(handler),
            "median": round(float(np.median(handler)), 2) if len(handler) else None,
            "max": round(float(handler.max()), 2) if len(handler) else None,
        },
        "target_met": finished and bool((gaps <= BLOCK_MS).all()),
    }


def measure_teaching(window: MainWindow, recipe: Path, good: Path, *, interval_ms: int, timeout_s: float) -> dict:
    """Teach ``recipe`` from ``good`` in the Recipes tab, ticking until it is reloaded taught."""
    recipes = window.recipes
    window.tabs.setCurrentWidget(recipes)
    if not recipes.open_recipe(str(recipe)):
        raise SystemExit(f"bench_gui: cannot open {recipe}: {window.status.toolTip()}")
    QTest.qWait(500)
    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(interval_ms)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    QTest.qWait(100)
    started = time.perf_counter()
    worker = recipes.normal.teach(good)
    if worker is None:
        raise SystemExit(f"bench_gui: teaching did not start: {window.status.toolTip()}")
    # The event loop waits as the application's does (QTest.qWait would hold Python's
    # interpreter lock while it waits, and starve the worker thread).
    loop = QEventLoop()
    check = QTimer(interval=20)
    deadline = started + timeout_s

    def done_or_late() -> None:
        if (recipes.recipe.taught and recipes.normal._worker is None) or time.perf_counter() > deadline:
            loop.quit()

    check.timeout.connect(done_or_late)
    check.start()
    loop.exec()
    check.stop()
    wall_s = time.perf_counter() - started
    QTest.qWait(100)
    timer.stop()
    gaps = np.diff(np.array(ticks)) * 1e3
    taught = recipes.recipe.taught
    return {
        "taught": taught,
        "wall_s": round(wall_s, 2),
        **gap_figures(gaps, interval_ms),
        "worst_gaps_ms": [round(float(g), 1) for g in np.sort(gaps)[::-1][:5]],
        "target_met": taught and bool((gaps <= BLOCK_MS).all()),
    }


def print_table(runs: list[dict], interval_ms: int) -> None:
    def phase(run: dict, name: str) -> str:
        p = run["phases"][name]
        return f"max {p['max_gap_ms']:.0f}, {p['gaps_over_50ms']} > 50" if p["ticks"] else "-"

    rows = [
        ("images inspected", lambda r: f"{r['images']}" + ("" if r["finished"] else " (TIMED OUT)")),
        ("wall time, click to done", lambda r: f"{r['wall_s']:.1f} s"),
        ("first result after", lambda r: f"{r['first_result_s']:.1f} s"),
        (f"ticks ({interval_ms} ms)", lambda r: f"{r['ticks']}"),
        ("max gap", lambda r: f"{r['max_gap_ms']:.1f} ms"),
        ("p99 gap", lambda r: f"{r['p99_gap_ms']:.1f} ms"),
        (f"gaps > {BLOCK_MS:.0f} ms", lambda r: f"{r['gaps_over_50ms']}"),
        ("worst gaps (ms)", lambda r: ", ".join(f"{g:.0f}" for g in r["worst_gaps_ms"][:3])),
        ("  loading phase (ms)", lambda r: phase(r, "loading")),
        ("  inspecting phase (ms)", lambda r: phase(r, "inspecting")),
        ("Start click", lambda r: f"{r['start_click_ms']:.1f} ms"),
        ("result handler median/max", lambda r: "{median:.1f} / {max:.1f} ms".format(**r["result_handler_ms"])),
        (f"no gap > {BLOCK_MS:.0f} ms", lambda r: "met" if r["target_met"] else "NOT met"),
    ]
    table = [["", *(f"run {k}" for k in range(1, len(runs) + 1))]]
    table += [[name, *(cell(run) for run in runs)] for name, cell in rows]
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    for row in table:
        print("  ".join([row[0].ljust(widths[0]), *(v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True))]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60, help="demo parts per run (default: 60)")
    parser.add_argument("--runs", type=int, default=1, help="runs one after the other in the same window (default: 1)")
    parser.add_argument("--interval", type=int, default=10, help="tick interval on the GUI thread, ms (default: 10)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up on a run after this many seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first run's parts (default: 0)")
    parser.add_argument(
        "--teach", type=int, default=0, metavar="N", help="then teach a copy of the demo recipe from N good parts"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["INSPECTOR_DATA_DIR"] = str(tmp / "data")  # nothing lands in the user's data folder
        t0 = time.perf_counter()
        # New parts for every run: a part already in the database would be skipped.
        folders = [tmp / f"parts-{k + 1}" for k in range(args.runs)]
        for k, folder in enumerate(folders):
            write_parts(folder, args.images, args.seed + k)
        print(f"{args.runs} x {args.images} demo parts (640x480) written in {time.perf_counter() - t0:.1f} s")

        app = QApplication.instance() or QApplication(sys.argv[:1])
        t0 = time.perf_counter()
        import_runtime()  # as the application does before its window appears
        print(f"torch and ultralytics imported before the window shows: {time.perf_counter() - t0:.1f} s")
        settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(db_url=str(tmp / "results.db"), settings=settings)
        settle_heap()  # as the application does
        window.operate.recipe_edit.setText(str(DEMO_RECIPE))
        probe = Probe(window.operate, args.interval)
        window.show()
        QTest.qWait(500)  # first layout and paint, before anything is measured
        runs = []
        teaching = None
        try:
            for folder in folders:
                runs.append(measure(window, probe, folder, interval_ms=args.interval, timeout_s=args.timeout))
                if not runs[-1]["finished"]:
                    break
            if args.teach:
                good = tmp / "good"
                write_parts(good, 2 * args.teach, args.seed + 1000)
                for path in sorted(good.glob("*.png"))[1::2]:  # every second part is defective
                    path.unlink()
                recipe = write_demo_recipe(tmp / "recipe")
                teaching = measure_teaching(window, recipe, good, interval_ms=args.interval, timeout_s=args.timeout)
        finally:
            window.close()
            app.processEvents()

    if runs:
        print_table(runs, args.interval)
    figures = {"images_per_run": args.images, "interval_ms": args.interval, "block_ms": BLOCK_MS, "runs": runs}
    if teaching is not None:
        print(
            f"teaching {args.teach} parts in the Recipes tab: {teaching['wall_s']:.1f} s, max gap "
            f"{teaching['max_gap_ms']:.1f} ms, {teaching['gaps_over_50ms']} gaps > {BLOCK_MS:.0f} ms, worst "
            + ", ".join(f"{g:.0f}" for g in teaching["worst_gaps_ms"][:3])
        )
        figures["teaching"] = teaching
    figures["target_met"] = all(run["target_met"] for run in runs) and (teaching is None or teaching["target_met"])
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if not all(run["finished"] for run in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
