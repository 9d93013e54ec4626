"""Shared test set-up: headless Qt, no network for ultralytics, per-test data folders."""

from __future__ import annotations

import os

# Before anything imports Qt or ultralytics.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "0"

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
