"""The GUI entry point: one QApplication, exception hooks, the main window."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import traceback

log = logging.getLogger("inspector.gui")


def install_excepthook(window) -> None:
    """Unexpected exceptions are logged with their traceback, kept in Messages each time
    and shown in a dialog once, not fatal."""
    from PySide6.QtWidgets import QMessageBox

    shown: set[str] = set()

    def hook(kind, value, tb) -> None:
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        key = f"{kind.__name__}: {value}"
        window.messages.add(f"Unexpected error: {key} (the details are in the log)", True)
        if key in shown:
            return
        shown.add(key)
        QMessageBox.critical(window, "Unexpected error", f"{key}\n\nThe details are in the log.")

    sys.excepthook = hook


def settle_heap() -> None:
    """Keep what is loaded so far out of Python's full garbage collections.

    A full collection walks every object on the heap with the interpreter lock held:
    with torch, ultralytics and the window loaded it took 120-160 ms, and when a worker
    thread set one off (copying the network at the start of a run) the window froze for
    that long. What the application loads before its window shows lives as long as it;
    the garbage of loading it is collected first.
    """
    gc.collect()
    gc.freeze()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inspector gui", description="Open the Inspector desktop application.")
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", help="recipe to open (Recipes) and run (Operate)")
    parser.add_argument("--source", help="folder or image files for Operate (separate several with ';')")
    parser.add_argument("--db", default=None, help="database URL or SQLite file")
    parser.add_argument("--tab", choices=("operate", "recipes", "history"), help="workspace to show first")
    parser.add_argument("--screenshot", help="save a picture of the window to this PNG and exit")
    parser.add_argument("--start", action="store_true", help="start the run in Operate right away")
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="with --screenshot: seconds to let work (segmentation, a run) progress first",
    )


def run_gui(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from inspector.engine.segmenter import import_runtime
    from inspector.gui.desktop import check_desktop, keep_opencv_qt_settings_out
    from inspector.gui.main_window import MainWindow

    app = QApplication.instance()
    if app is None:
        # Said in words here, before Qt would abort on them.
        keep_opencv_qt_settings_out()
        check_desktop()
        app = QApplication(sys.argv[:1])
    app.setApplicationName("Inspector")
    # torch and ultralytics load before the window shows: importing them later, on the
    # first run's worker thread, would hold the interpreter lock and freeze the window.
    import_runtime()
    window = MainWindow(db_url=args.db)
    settle_heap()
    install_excepthook(window)
    if args.recipe:
        window.open_recipe(args.recipe, as_job=True)
    if args.source:
        window.operate.source_edit.setText(args.source)
    if args.tab:
        window.tabs.setCurrentIndex(("operate", "recipes", "history").index(args.tab))
    window.show()
    if args.start:
        QTimer.singleShot(0, window.operate.start)
    if args.screenshot:

        def shoot() -> None:
            window.grab().save(args.screenshot)
            window.close()

        QTimer.singleShot(int(args.wait * 1000) + 300, shoot)
    return app.exec()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``inspector-gui`` program."""
    from inspector.errors import InspectorError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run_gui(build_parser().parse_args(argv))
    except InspectorError as exc:  # as the inspector command says its errors
        print(f"inspector-gui: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
