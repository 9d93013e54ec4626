"""``inspector gui``: the desktop application."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from inspector.gui.app import add_arguments

    p = sub.add_parser(
        "gui",
        help="open the desktop application",
        description="Open the desktop application (Operate, Recipes, History).",
    )
    add_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from inspector.gui.app import run_gui  # Qt loads only for this command

    return run_gui(args)
