"""Weights resolution: embedded model, model folder, pins, and the offline message."""

from __future__ import annotations

import time

import pytest

from inspector import settings
from inspector.engine import weights
from inspector.engine.weights import BUILTIN_NAME, resolve_weights
from inspector.errors import EngineError


def test_embedded_model_resolves_by_default_with_its_hash():
    resolved = resolve_weights(None)
    assert resolved.identity.name == BUILTIN_NAME
    assert resolved.path.stat().st_size < 15_000_000
    assert len(resolved.identity.sha256) == 64


def test_missing_fastsam_offline_fails_fast_and_says_where_to_put_it(monkeypatch):
    monkeypatch.setattr(weights, "_DOWNLOAD_HOST", "no-such-host.invalid")
    started = time.perf_counter()
    with pytest.raises(EngineError) as err:
        resolve_weights("FastSAM-s.pt", allow_download=True)
    assert time.perf_counter() - started < 2.0
    assert str(settings.model_dir()) in str(err.value)
    assert "FastSAM-s.pt" in str(err.value)


def test_missing_weights_without_download_name_the_folder():
    with pytest.raises(EngineError, match=r"FastSAM-x\.pt") as err:
        resolve_weights("FastSAM-x.pt")
    assert str(settings.model_dir()) in str(err.value)


def test_weights_are_found_in_the_model_folder_and_pinned(tmp_path):
    folder = settings.model_dir()
    folder.mkdir(parents=True)
    (folder / "custom.pt").write_bytes(b"weights")
    resolved = resolve_weights("custom.pt")
    assert resolved.path == folder / "custom.pt"
    assert resolve_weights("custom.pt", expected_sha256=resolved.identity.sha256).path == resolved.path
    with pytest.raises(EngineError, match="pinned"):
        resolve_weights("custom.pt", expected_sha256="0" * 64)


def test_an_explicit_missing_path_is_named(tmp_path):
    with pytest.raises(EngineError, match=r"nowhere\.pt"):
        resolve_weights(tmp_path / "nowhere.pt")


def test_one_network_per_model_is_shared_and_the_least_recently_used_is_let_go(tmp_path, monkeypatch):
    import shutil

    from inspector.engine import segmenter as segmenters

    monkeypatch.setattr(segmenters, "_shared", type(segmenters._shared)())
    builtin = resolve_weights(BUILTIN_NAME).path
    copies = []
    for name in ("a", "b"):
        copies.append(tmp_path / f"{name}.pt")
        shutil.copy(builtin, copies[-1])
    first = segmenters.shared_segmenter(BUILTIN_NAME, device="cpu")
    assert segmenters.shared_segmenter(None, device="cpu") is first  # the same file, however named
    assert first.identity.name == BUILTIN_NAME
    assert segmenters.shared_segmenter(BUILTIN_NAME, device="cpu", backend="torch") is not first  # another backend
    other = segmenters.shared_segmenter(copies[0], device="cpu")
    assert len(segmenters._shared) == segmenters.SHARED_NETWORKS  # the first was let go
    assert segmenters.shared_segmenter(copies[0], device="cpu") is other
    assert segmenters.shared_segmenter(BUILTIN_NAME, device="cpu") is not first


@pytest.mark.model
def test_the_safe_loader_builds_the_network_ultralytics_builds(tmp_path):
    """Loading with the restricted unpickler gives the same network, output for output."""
    import torch
    from ultralytics import FastSAM

    from inspector.engine.checkpoint import load_segmentation_module

    path = resolve_weights(None).path
    ours = load_segmentation_module(path).fuse(verbose=False).eval()
    theirs = FastSAM(str(path)).model.fuse(verbose=False).eval()
    image = torch.rand(1, 3, 256, 320)
    with torch.no_grad():
        a, b = ours(image), theirs(image)
    leaves_a, leaves_b = _tensors(a), _tensors(b)
    assert leaves_a and len(leaves_a) == len(leaves_b)
    assert all(torch.equal(x, y) for x, y in zip(leaves_a, leaves_b, strict=True))


def _tensors(output) -> list:
    """Every tensor in a network's nested (tuple, list, dict) output, in order."""
    import torch

    if isinstance(output, torch.Tensor):
        return [output]
    items = output.values() if isinstance(output, dict) else output
    return [leaf for item in items for leaf in _tensors(item)]


def test_a_checkpoint_in_the_old_pickle_format_is_refused_unread(tmp_path):
    import pickle

    from inspector.engine.checkpoint import read_checkpoint

    path = tmp_path / "old.pt"
    path.write_bytes(pickle.dumps({"model": None}))
    with pytest.raises(EngineError, match="not a PyTorch checkpoint"):
        read_checkpoint(path)


class _CallsALayer:
    """A checkpoint entry that calls an allowed layer class with its own arguments."""

    def __reduce__(self):
        from ultralytics.nn.modules.conv import Conv

        return (Conv, (3, 16))


def test_a_checkpoint_that_calls_a_layer_class_instead_of_building_it_is_refused(tmp_path):
    import torch

    from inspector.engine.checkpoint import read_checkpoint

    path = tmp_path / "calls.pt"
    torch.save({"model": _CallsALayer()}, path)
    with pytest.raises(EngineError, match=r"Conv \(called\)"):
        read_checkpoint(path)


def test_classes_outside_the_layers_are_refused_even_under_ultralytics_nn(tmp_path):
    import pickle

    import torch

    from inspector.engine.checkpoint import read_checkpoint

    class Loader:  # what a crafted file does: ask for a class that loads another file
        def __reduce__(self):
            from ultralytics.nn.autobackend import AutoBackend

            return (AutoBackend, (str(tmp_path / "inner.pt"),))

    path = tmp_path / "outer.pt"
    torch.save({"model": Loader()}, path, pickle_module=pickle)
    with pytest.raises(EngineError, match="AutoBackend"):
        read_checkpoint(path)
