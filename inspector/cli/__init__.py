"""The ``inspector`` command line: one module per command, registered here."""

from __future__ import annotations

import argparse
import logging
import sys

from inspector import __version__
from inspector.cli import bench, db, demo, evaluate, export, gui, recipe, report, run, segment, serve, teach
from inspector.errors import InspectorError

# Each command module provides add_parser(subparsers) and run(args) -> exit status.
COMMANDS = (demo, run, teach, evaluate, segment, recipe, report, gui, export, bench, db, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inspector",
        description="Inspector: visual defect inspection with FastSAM.",
    )
    parser.add_argument("--version", action="version", version=f"inspector {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; domain errors become a one-line message and exit status 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.run(args) or 0)
    except InspectorError as exc:
        print(f"inspector {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or folder the command cannot read or write: name it, no traceback
        where = "".join(f"{name}: " for name in (exc.filename, exc.filename2) if name)
        print(f"inspector {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"inspector {args.command}: interrupted", file=sys.stderr)
        return 130
