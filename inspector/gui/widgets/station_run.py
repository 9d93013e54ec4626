"""Operate's line station: a station configuration (``station.yaml``) run as
``inspector serve`` runs it, its state in the verdict tile and each output's connection
in a panel beside it; its results in the pane, counters and rejects strip as a run's."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QGroupBox, QPushButton, QVBoxLayout

from inspector.gui.widgets.elided import ElidedLabel

# What the tile says of the station's state; "" is READY, "result" keeps the verdict up.
STATE_TILE = {"starting": "STARTING", "busy": "BUSY", "error": "ERROR", "offline": "OFFLINE"}
OUTPUT_NAMES = {"mqtt": "MQTT broker", "opcua": "OPC UA server", "camera": "Camera"}
OUTPUT_COLOURS = {"connected": "#1b7f3b", "listening": "#1b7f3b", "reconnecting": "#b9770e"}  # else red
_PASSWORD_IN_URL = re.compile(r"(//[^/:@\s]*):[^@\s/]*@")


def without_password(text: str) -> str:
    """``text`` with any password in a URL (``rtsp://user:secret@host``) hidden."""
    return _PASSWORD_IN_URL.sub(r"\1:***@", text)


def connection_word(text: str) -> str:
    """connected, listening, refused or reconnecting: what an output's ``text`` comes to."""
    if text == "connected":
        return "connected"
    if text.startswith("listening"):
        return "listening"
    if "refused" in text:
        return "refused"
    if "reconnecting" in text or "cannot reach" in text or "did not answer" in text:
        return "reconnecting"
    return text


def output_addresses(config) -> dict[str, str]:
    """Each output of a station configuration and its address (never a password)."""
    outputs = {}
    if config.source.camera is not None and (config.source.kind == "camera" or config.source.capture == "camera"):
        outputs["camera"] = without_password(config.source.camera)
    if config.mqtt is not None:
        outputs["mqtt"] = f"{config.mqtt.host}:{config.mqtt.port}"
    if config.opcua is not None:
        outputs["opcua"] = f"opc.tcp://{config.opcua.host}:{config.opcua.port}"
    return outputs


def _fixed(label: ElidedLabel) -> ElidedLabel:
    """Never squeezed below its lines in the side column (which scrolls instead)."""
    label.setMinimumHeight(label.sizeHint().height())
    return label


class StationPanel(QGroupBox):
    """The chosen station configuration, the station's state and each output's connection."""

    def __init__(self, parent=None) -> None:
        super().__init__("Line station", parent)
        self.file_label = _fixed(ElidedLabel(max_lines=2))
        self.state_label = _fixed(ElidedLabel(max_lines=2))
        self.outputs_box = QVBoxLayout()
        self.clear_button = QPushButton("Inspection only")
        self.clear_button.setToolTip("Forget the station configuration: Start runs the recipe on the source again")
        layout = QVBoxLayout(self)
        layout.addWidget(self.file_label)
        layout.addWidget(self.state_label)
        layout.addLayout(self.outputs_box)
        layout.addWidget(self.clear_button)
        self.outputs: dict[str, ElidedLabel] = {}
        self._addresses: dict[str, str] = {}

    def show_file(self, path: str) -> None:
        self.file_label.setText(f"{Path(path).name}\nits recipes, source and outputs (Start: F5)")
        self.file_label.setToolTip(path)
        self.state_label.setText("Not running")
        self.set_outputs({})

    def set_outputs(self, addresses: dict[str, str]) -> None:
        for label in self.outputs.values():
            self.outputs_box.removeWidget(label)
            label.deleteLater()
        self.outputs, self._addresses = {}, dict(addresses)
        for output, address in addresses.items():
            self._add(output, f"{OUTPUT_NAMES.get(output, output)}: connecting…\n{address}")

    def _add(self, output: str, text: str) -> None:
        self.outputs[output] = _fixed(ElidedLabel(text, max_lines=2))  # its state, then where and what it said
        self.outputs_box.addWidget(self.outputs[output])

    def set_connection(self, output: str, text: str) -> None:
        text = without_password(text)
        if output not in self.outputs:  # an output the configuration did not name: said all the same
            self._addresses[output] = ""
            self._add(output, "")
        word = connection_word(text)
        label = self.outputs[output]
        said = f" ({text})" if word != text else ""
        label.setText(f"{OUTPUT_NAMES.get(output, output)}: {word}\n{self._addresses[output]}{said}".rstrip())
        label.setToolTip(label.text())
        label.setStyleSheet(f"color:{OUTPUT_COLOURS.get(word, '#c0392b')}")

    def connection_text(self, output: str) -> str:
        return self.outputs[output].text() if output in self.outputs else ""


class StationRun(QObject):
    """Operate's station mode: choose a configuration, Start / Stop it (F5).

    ``operate`` is the OperateWorkspace it shows in; ``prepare`` makes a result's pictures
    on the station's thread (``operate.result_pictures``).
    """

    def __init__(self, operate, prepare) -> None:
        super().__init__(operate)
        self.operate, self.prepare = operate, prepare
        self.file: str | None = None
        self.worker = None
        self.panel = StationPanel()
        self.panel.setVisible(False)
        self.panel.clear_button.clicked.connect(lambda: self.choose(None))
        self.button = QPushButton("Station…")
        self.button.setToolTip("Run a line station's configuration (station.yaml), as `inspector serve` does")
        self.button.clicked.connect(self._choose_file)
        self._shown_state: tuple | None = None
        self._verdict = ""  # the last result's, kept up while the station is ready

    @property
    def running(self) -> bool:
        return self.worker is not None

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.operate, "Station configuration", "", "Station configurations (*.yaml *.yml)"
        )
        if path:
            self.choose(path)

    def choose(self, path: str | None) -> None:
        """Run ``path``'s station on Start from now on; None: inspection only again."""
        if self.running:
            return
        self.file = path
        self.panel.setVisible(path is not None)
        if path is not None:
            self.panel.show_file(path)
        for widget in self.operate.source_widgets():
            widget.setEnabled(path is None)

    def start(self) -> None:
        from inspector.gui.workers import StationWorker

        op = self.operate
        name = op.job.station()
        if name is None or self.file is None:
            return
        self.worker = StationWorker(name, self.file, op, prepare=self.prepare)
        self.worker.configured.connect(lambda config: self.panel.set_outputs(output_addresses(config)))
        self.worker.status.connect(self._status)
        self.worker.result.connect(self._result)
        self.worker.connection.connect(self.panel.set_connection)
        self.worker.stopped_station.connect(self._stopped)
        self.worker.failed.connect(self._failed)
        self.worker.finished.connect(self._thread_done)
        self._shown_state, self._verdict = None, ""
        op.view.set_image(None)
        op.current.setText("")
        op.source_status.setText("")
        self._tile("STARTING")
        self.panel.state_label.setText("Starting…")
        self.panel.set_outputs({})
        op.tally.start_run()
        op.rejects.start_run()
        self.worker.start()
        op.start_button.setText("Stop")
        op.job.set_running(True)
        self.button.setEnabled(False)
        self.panel.clear_button.setEnabled(False)
        op.message.emit(f"Starting station {name} from {self.file}", False)
        op.running_changed.emit(True)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.operate.start_button.setEnabled(False)
            self.operate.message.emit("Stopping the station after the part in hand…", False)

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker.wait()

    def _tile(self, text: str) -> None:
        self.operate.show_tile(text)

    def _status(self, status) -> None:
        shown = (status.state, status.reason, status.product)
        if shown == self._shown_state:
            return  # the counts changed, or the products were looked at again
        self._shown_state = shown
        reason = f"\n{status.reason}" if status.reason else ""
        product = f", product {status.product}" if status.product else ""
        self.panel.state_label.setText(f"{status.state.capitalize()}{product}{reason}")
        self.panel.state_label.setToolTip(self.panel.state_label.text())
        if status.state in STATE_TILE:
            self._tile(STATE_TILE[status.state])
            if status.state == "error":
                self.operate.current.setText(status.reason or "")
        elif status.state == "ready":
            self._tile(self._verdict)

    def _result(self, sent, image, inspected, pictures) -> None:
        self._verdict = sent.verdict
        if inspected is not None:
            self.operate.show_result(sent.image, inspected, image, pictures)
            return
        # A result the station made (a timeout, a part it could not take): no picture.
        self.operate.tally.add(sent.verdict, sent.inspect_ms)
        self._tile(sent.verdict)
        self.operate.view.set_image(None)
        self.operate.current.setText(f"{Path(sent.image).name or sent.id}\n{sent.error or ''}")

    def _stopped(self, runs: list[int]) -> None:
        if runs:
            self.operate.rejects.end_run(runs[-1])
        counts = self.operate.counters
        self.operate.message.emit(
            f"Station stopped; runs {', '.join(map(str, runs)) or '-'}; {counts['Inspected'].text()} inspected",
            False,
        )

    def _failed(self, text: str) -> None:
        self.panel.state_label.setText(f"Not running\n{text}")
        self.panel.state_label.setToolTip(text)
        self._tile("OFFLINE")
        self.operate.message.emit(text, True)

    def _thread_done(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.wait()
            worker.deleteLater()
        self.button.setEnabled(True)
        self.panel.clear_button.setEnabled(True)
        self.operate.run_ended()
