"""Shared test set-up: headless Qt, no network for ultralytics, per-test data folders."""

from __future__ import annotations

import os

# Before anything imports Qt or ultralytics.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "0"

import json

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    """Every test gets its own data and model folders; nothing touches the user's."""
    root = tmp_path_factory.mktemp("inspector-data")
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(root))
    monkeypatch.delenv("INSPECTOR_MODEL_DIR", raising=False)
    return root


@pytest.fixture(scope="session")
def embedded_segmenter():
    """The real embedded model, loaded once for the whole session."""
    from inspector.engine.segmenter import FastSAMSegmenter

    segmenter = FastSAMSegmenter(device="cpu")
    segmenter.load()
    return segmenter


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """A tiny open_clip architecture from a local config and a checkpoint of random weights.

    Exercises the real CLIP code path (weights file, crops, encoders) without a download.
    """
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("tiny-clip")
    config = folder / "tiny-clip.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-clip")
    checkpoint = folder / "tiny-clip.pt"
    torch.save(model.state_dict(), checkpoint)
    return config, checkpoint


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on the loopback for the whole session (see tests/postgres.py).

    Without the server binaries the PostgreSQL variants are skipped, saying why; under CI
    (which installs them) that is a failure.
    """
    from tests.postgres import PostgresServer, server_binaries

    binaries = server_binaries()
    if binaries is None:
        message = "PostgreSQL server binaries not found: apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer(binaries).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A new, empty results database: a SQLite file, or a database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)
