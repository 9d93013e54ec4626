"""Reading ahead of inspection: order, skipping, registering on several threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inspector.engine.image import write_image
from inspector.services import inspection_loop
from inspector.services.read_ahead import read_ahead
from inspector.sources.files import FileSource


def test_reading_ahead_on_several_threads_keeps_the_order_and_registers_each_image(tmp_path):
    folder = tmp_path / "parts"
    for k in range(9):
        write_image(folder / f"p{k}.png", np.full((20 + k, 30, 3), 10 * k, np.uint8))
    registered = []

    def register(image, size):
        registered.append(size)
        return ("registered", size)

    frames = FileSource([folder]).frames()
    decoded = list(read_ahead(frames, skip=lambda f: f.name.endswith("p4.png"), register=register, workers=3))
    assert [Path(d.frame.name).name for d in decoded] == [f"p{k}.png" for k in range(9)]
    assert decoded[4].image is None and decoded[4].registration is None  # skipped: neither decoded nor registered
    assert [d.registration for d in decoded if d.image is not None] == [
        ("registered", (30, 20 + k)) for k in range(9) if k != 4
    ]
    assert len(registered) == 8


def test_images_are_registered_beside_the_network_only_where_it_leaves_the_cores_free(monkeypatch):
    class Pipeline:
        def __init__(self, device_type):
            self.segmenter = type("Segmenter", (), {"device_type": device_type})()

    monkeypatch.setattr(inspection_loop.os, "cpu_count", lambda: 16)
    assert inspection_loop.registration_workers(Pipeline("cpu")) == 0  # the forward pass needs every core
    assert inspection_loop.registration_workers(Pipeline(None)) == 0  # not loaded: no guess
    assert inspection_loop.registration_workers(Pipeline("cuda")) == inspection_loop.MAX_REGISTRATION_WORKERS
    monkeypatch.setattr(inspection_loop.os, "cpu_count", lambda: 2)
    assert inspection_loop.registration_workers(Pipeline("cuda")) == 1
