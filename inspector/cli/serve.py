"""``inspector serve --station NAME --config station.yaml``: a headless station on the line.

Runs until stopped (Ctrl+C, SIGTERM): the configured source, the active recipe (switched
by the line over MQTT or OPC UA), the outputs; every result stored as ``inspector run``
stores it. The station's state, each output's connection and each result are printed,
one line each (``--json``: one JSON object each).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from inspector.cli.arguments import station_name


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="run a headless station: triggers, recipes and results over MQTT / OPC UA",
        description="Run a station until stopped: the configured source and outputs, the active recipe "
        "switched by the line; every result stored as `inspector run` stores it.",
    )
    p.add_argument("--station", required=True, type=station_name, help="the station's name (in topics and runs)")
    p.add_argument("--config", required=True, metavar="FILE", help="the station's configuration (station.yaml)")
    p.add_argument("--json", action="store_true", help="print states and results as JSON lines")
    p.set_defaults(run=run)


def _printer(as_json: bool):
    lock = threading.Lock()

    def say(kind: str, data: dict, text: str) -> None:
        with lock:
            print(json.dumps({kind: data}) if as_json else text, flush=True)

    shown = [None]

    def status(s) -> None:
        if shown[0] == (s.state, s.reason, s.product):
            return  # the counts changed, or the products were looked at again
        shown[0] = (s.state, s.reason, s.product)
        reason = f" ({s.reason})" if s.reason else ""
        say("state", json.loads(s.to_json()), f"state  {s.state}{reason}  product {s.product or '-'}")

    def result(r) -> None:
        error = f"  ({r.error})" if r.error else ""
        say("result", json.loads(r.to_json()), f"result {r.id} {r.verdict:<5} {r.image}{error}")

    def connection(output: str, text: str) -> None:
        say("connection", {"output": output, "state": text}, f"{output}: {text}")

    return status, result, connection


def run(args: argparse.Namespace) -> int:
    from inspector.line.config import load_config
    from inspector.line.service import LineService

    config = load_config(args.config)
    on_status, on_result, on_connection = _printer(args.json)
    stop = threading.Event()

    def ask_to_stop(signum, _frame) -> None:
        print(f"inspector serve: {signal.Signals(signum).name}: stopping after the current part", file=sys.stderr)
        stop.set()

    previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        service = LineService(
            args.station, config, on_status=on_status, on_result=on_result, on_connection=on_connection
        ).start()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            service.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    counts = service.station.handshake.counts
    print(
        f"inspector serve: stopped; runs {', '.join(map(str, service.station.runs)) or '-'}; "
        f"{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['ERROR']} ERROR, {counts['refused']} refused; "
        f"results in {service.store.url}",
        file=sys.stderr,
    )
    return 0
