"""The feature network: its own layers give the features timm's model gives from the
same weights, and a damaged weights package is said, naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.engine import backbone as backbones
from inspector.engine.backbone import BACKBONE, DIMENSIONS, STRIDE, Backbone
from inspector.errors import EngineError


def _timm_features(image: np.ndarray) -> np.ndarray:
    """The features as timm's tf_efficientnet_lite0 computes them (levels 2 and 3 of
    features_only, pooled and brought together as Backbone does)."""
    import timm
    import torch
    import torch.nn.functional as F

    checkpoint = torch.load(backbones.weights_file(), map_location="cpu", weights_only=True)
    model = timm.create_model(BACKBONE, pretrained=False, features_only=True, out_indices=(2, 3)).eval()
    full = timm.create_model(BACKBONE, pretrained=False)
    state = dict(zip(full.state_dict().keys(), checkpoint.values(), strict=True))  # the same order, one to one
    model.load_state_dict({k: v for k, v in state.items() if k in model.state_dict()})
    rgb = np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1), dtype=np.float32)
    x = (torch.from_numpy(rgb)[None] / 255.0 - 0.5) / 0.5
    with torch.inference_mode():
        taken = [F.avg_pool2d(f, 3, stride=1, padding=1, count_include_pad=True) for f in model(x)]
        grid = taken[0].shape[-2:]
        maps = [taken[0], F.interpolate(taken[1], size=grid, mode="bilinear", align_corners=False)]
        return torch.cat(maps, dim=1)[0].permute(1, 2, 0).numpy()


def test_the_features_are_the_ones_timm_gives_from_the_same_weights():
    image = np.random.default_rng(3).integers(0, 256, (96, 136, 3), dtype=np.uint8)
    ours = Backbone().features(image)
    assert ours.features.shape == (96 // STRIDE, 136 // STRIDE, DIMENSIONS) and ours.size == (136, 96)
    np.testing.assert_allclose(ours.features, _timm_features(image), atol=2e-3, rtol=1e-3)


def test_weights_of_another_shape_are_refused_naming_the_tensor(monkeypatch, tmp_path):
    import torch

    checkpoint = torch.load(backbones.weights_file(), map_location="cpu", weights_only=True)
    checkpoint["_blocks.3._depthwise_conv.weight"] = torch.zeros(96, 1, 3, 3)
    damaged = tmp_path / "lite0.pth"
    torch.save(checkpoint, damaged)
    monkeypatch.setattr(backbones, "weights_file", lambda: damaged)
    with pytest.raises(EngineError, match=r"_blocks\.3\._depthwise_conv\.weight should be \(144, 1, 5, 5\)"):
        Backbone()


def test_a_large_image_is_computed_in_tiles_with_the_features_of_one_pass():
    from inspector.engine.backbone import TILE, TILE_CONTEXT

    rng = np.random.default_rng(5)
    texture = rng.integers(60, 200, (40, 60, 3), dtype=np.uint8)
    image = np.ascontiguousarray(np.tile(texture, (20, 30, 1))[: TILE + 3 * TILE_CONTEXT, : 2 * TILE + 48])
    model = Backbone()
    tiled = model.features(image)
    whole = model._features(image)
    assert (
        tiled.features.shape == whole.features.shape == (image.shape[0] // STRIDE, image.shape[1] // STRIDE, DIMENSIONS)
    )
    # Away from the image's edges a tile's context holds what the network's reach needs:
    # the features agree with one pass over the whole image.
    inner = np.s_[4:-4, 4:-4]
    difference = np.abs(tiled.features[inner] - whole.features[inner])
    assert np.median(difference) < 1e-3 * np.abs(whole.features[inner]).mean() + 1e-4
    assert np.percentile(difference, 99) < 0.01 * np.abs(whole.features[inner]).max()
