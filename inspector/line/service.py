"""A station assembled from its configuration: the store, the source, the recipes, the
station itself and its outputs, started and stopped together. ``inspector serve`` is a
thin face over this; any other face (the desktop's Operate) can run the same file."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path

from inspector.engine.pipeline import open_pipeline
from inspector.errors import InspectorError
from inspector.line.config import ConfigError, SourceConfig, StationConfig, topic_name_problem
from inspector.line.messages import LineResult, Status
from inspector.line.recipes import RecipeShelf
from inspector.line.station import PipelineFactory, Station
from inspector.line.triggered import CameraCapture, FolderCapture, Relay, TriggeredSource
from inspector.services.inspection_loop import RunSettings
from inspector.settings import data_dir
from inspector.sources import CameraSource, SourceOptions, open_source
from inspector.store.database import open_store

log = logging.getLogger(__name__)


def journal_path(station: str, output: str) -> Path:
    """Where an output keeps the results it has not sent yet, per station, in the data
    folder (a name made safe for any file system, and told apart by its hash)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", station)[:60]
    digest = hashlib.sha256(station.encode()).hexdigest()[:8]
    return data_dir() / "line" / f"{safe}-{digest}.{output}-outbox"


def open_line_source(config: SourceConfig, *, on_status: Callable[[str], None] | None = None):
    """The station's source: triggered (the next file of a folder, a camera's next frame)
    or a live source kept open across recipe switches."""
    if config.kind == "trigger":
        if config.capture == "folder":
            capture = FolderCapture(config.folder, sort=config.sort)
        else:
            camera = open_source(f"camera:{config.camera}", SourceOptions(trigger="software", on_status=on_status))
            assert isinstance(camera, CameraSource)
            capture = CameraCapture(camera)
        return TriggeredSource(capture, timeout=config.timeout)
    spec = f"watch:{config.folder}" if config.kind == "watch" else f"camera:{config.camera}"
    options = SourceOptions(settle=config.settle, sort=config.sort, every=config.every, on_status=on_status)
    return Relay(open_source(spec, options))


class LineService:
    """The station and its outputs, as one configuration describes them.

    Args:
        name: the station's name.
        config: the checked configuration (``config.load_config``).
        pipeline: a ready pipeline for a recipe (default: the recipe's model, on the
            configured device).
        on_status, on_result: told each state and each result (a face prints them).
        on_connection: told each output's connection state, as ``(output, text)``.
    """

    def __init__(
        self,
        name: str,
        config: StationConfig,
        *,
        pipeline: PipelineFactory | None = None,
        on_status: Callable[[Status], None] | None = None,
        on_result: Callable[[LineResult], None] | None = None,
        on_connection: Callable[[str, str], None] | None = None,
    ) -> None:
        if config.mqtt is not None and topic_name_problem(name):
            raise ConfigError(f"station name: {topic_name_problem(name)}")
        self.name, self.config = name, config
        self._on_connection = on_connection or (lambda output, text: None)
        shelf = RecipeShelf(config.recipes)
        shelf.scan()  # a missing folder is said now
        source = open_line_source(config.source, on_status=lambda text: self._on_connection("camera", text))
        self.store = open_store(config.database)
        try:
            self.station = Station(
                name,
                shelf=shelf,
                source=source,
                store=self.store,
                open_pipeline=pipeline or (lambda recipe: open_pipeline(recipe, device=config.device)),
                product=config.product,
                settings=RunSettings(station=name, save_overlays=config.save_overlays, save_frames=config.save_frames),
                require_ack=config.handshake.acknowledge,
                timeout=config.handshake.timeout,
            )
        except BaseException:
            self.store.close()
            source.stop()
            raise
        self.station.handshake.subscribe(result=on_result, status=on_status)
        self.outputs: list = []

    def start(self) -> LineService:
        """Start the outputs (they report the state from the start), then the station."""
        try:
            if self.config.mqtt is not None:
                from inspector.line.mqtt import MqttOutput

                self.outputs.append(
                    MqttOutput(
                        self.station,
                        self.config.mqtt,
                        journal=journal_path(self.name, "mqtt"),
                        on_connection=lambda text: self._on_connection("mqtt", text),
                    ).start()
                )
            if self.config.opcua is not None:
                from inspector.line.opcua import OpcUaOutput

                self.outputs.append(
                    OpcUaOutput(
                        self.station, self.config.opcua, on_connection=lambda text: self._on_connection("opcua", text)
                    ).start()
                )
            self.station.start()
        except InspectorError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop after the current image; its result is stored and sent; the outputs say
        the station is offline and send what still waits."""
        self.station.stop()
        for output in self.outputs:
            try:
                output.close()
            except Exception:
                log.exception("closing an output failed")
        self.store.close()
