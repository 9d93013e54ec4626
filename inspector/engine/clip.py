"""Text classes and exemplars for segments, with CLIP through open-clip-torch.

A segment is shown to CLIP as a *masked crop*: its box, with every pixel outside the
mask blanked to CLIP's mean colour (zero after normalisation), padded to a square.
Each class is one or more prototypes in CLIP's embedding space: the mean of its text
templates ("a photo of a {} on a part", ...) and, for few-shot classes, the mean image
embedding of its exemplar segments. A segment's class probabilities are the softmax of
its similarity to every prototype (positive and negative classes together), summed per
class name.

The model is loaded once per process, lazily, and a text is encoded once per process:
recipes without classes never import open_clip. Weights come from a file or, when the
user asks and the network answers, an open_clip download into the model folder.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inspector import settings
from inspector.engine.weights import host_answers
from inspector.errors import EngineError

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_TAG = "laion2b_s34b_b79k"
TEMPLATES = ("a photo of a {} on a part", "a close-up photo of a {}", "a photo of a {}")
# What a text prompt is weighed against when the caller names no negative class.
DEFAULT_NEGATIVES = ("a normal surface", "the background")
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_DOWNLOAD_HOST = "huggingface.co"


class ClipUnavailable(EngineError):
    """CLIP cannot be loaded: open-clip-torch or the weights are missing."""


def clip_dir() -> Path:
    """Where CLIP checkpoints are looked for and downloaded: ``<model folder>/clip``."""
    return settings.model_dir() / "clip"


def how_to_provide(model: str, tag: str | None) -> str:
    """The sentence every "no CLIP weights" message ends with."""
    name = f"{model}-{tag}.bin" if tag else f"{model}.bin"
    return (
        f"put an open_clip checkpoint for {model} at {clip_dir() / name} "
        "(or set clip.weights in the recipe to its path), or, when online, fetch it once with "
        f"`inspector segment IMAGE --text WORD --clip-model {model} --clip-weights {tag or 'TAG'} --download`"
    )


@dataclass(frozen=True)
class ClipWeights:
    """A CLIP model architecture and the checkpoint file for it."""

    model: str  # open_clip model name
    path: Path
    tag: str | None = None  # the open_clip pretrained tag the file was downloaded as
    config: Path | None = None  # a model configuration file registered with open_clip


def _open_clip():
    try:
        import open_clip
    except ImportError:
        raise ClipUnavailable(
            "text classes need open-clip-torch, which is not installed: pip install open-clip-torch"
        ) from None
    return open_clip


def _register(model: str, base: Path | None) -> tuple[str, Path | None]:
    """A model given as a JSON configuration file is registered with open_clip under its stem."""
    if not model.endswith(".json"):
        return model, None
    path = Path(model).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_file():
        raise ClipUnavailable(f"CLIP model configuration {path} does not exist")
    _open_clip().add_model_config(path)
    return path.stem, path


def _download(model: str, tag: str, target: Path) -> Path:
    open_clip = _open_clip()
    if not host_answers(_DOWNLOAD_HOST, timeout=1.5):
        raise ClipUnavailable(f"cannot download CLIP {model} {tag}: no network; " + how_to_provide(model, tag))
    cfg = open_clip.get_pretrained_cfg(model, tag)
    cache = target.parent / ".download"
    try:
        fetched = Path(open_clip.download_pretrained(cfg, cache_dir=str(cache)))
    except Exception as exc:  # hub and url errors come in many kinds
        raise ClipUnavailable(f"download of CLIP {model} {tag} failed ({exc}); " + how_to_provide(model, tag)) from exc
    final = target.with_suffix(fetched.suffix if fetched.suffix in CHECKPOINT_SUFFIXES else ".bin")
    shutil.copyfile(fetched, final)
    shutil.rmtree(cache, ignore_errors=True)
    return final


def resolve_clip(
    model: str = DEFAULT_MODEL,
    weights: str | None = None,
    *,
    base: Path | None = None,
    allow_download: bool = False,
) -> ClipWeights:
    """Find the checkpoint for a CLIP model.

    Args:
        model: an open_clip model name (``ViT-B-32``) or a model configuration JSON file.
        weights: a checkpoint path (relative to ``base``), a file name in the CLIP model
            folder, or an open_clip pretrained tag (default: ``laion2b_s34b_b79k`` for
            models that have it). A tag is looked for as ``<model>-<tag>.*`` in the folder
            and downloaded there only when ``allow_download`` is true.

    Raises:
        ClipUnavailable: open-clip-torch is missing, or so are the weights; the message
            says how to provide them.
    """
    open_clip = _open_clip()
    name, config = _register(model, base)
    if name not in open_clip.list_models():
        raise ClipUnavailable(f"unknown CLIP model {model!r}; open_clip knows e.g. ViT-B-32, ViT-B-16, RN50")
    tags = open_clip.list_pretrained_tags_by_model(name)
    if weights is None:
        weights = DEFAULT_TAG if DEFAULT_TAG in tags else (tags[0] if tags else None)
        if weights is None:
            raise ClipUnavailable(f"CLIP model {name} has no published weights; set clip.weights to a checkpoint file")
    # A path has a folder in it (relative to the recipe); a bare name is a file in the CLIP folder.
    if "/" in weights or "\\" in weights:
        as_path = Path(weights).expanduser()
        as_path = as_path if as_path.is_absolute() or base is None else base / as_path
        if as_path.is_file():
            return ClipWeights(name, as_path.resolve(), None, config)
    if (clip_dir() / weights).is_file():
        return ClipWeights(name, (clip_dir() / weights).resolve(), None, config)
    if weights in tags:
        for suffix in CHECKPOINT_SUFFIXES:
            local = clip_dir() / f"{name}-{weights}{suffix}"
            if local.is_file():
                return ClipWeights(name, local, weights, config)
        if allow_download:
            clip_dir().mkdir(parents=True, exist_ok=True)
            return ClipWeights(name, _download(name, weights, clip_dir() / f"{name}-{weights}"), weights, config)
        raise ClipUnavailable(f"CLIP weights {name} {weights} are not here; " + how_to_provide(name, weights))
    raise ClipUnavailable(
        f"CLIP weights {weights!r} not found (not a file, not in {clip_dir()}, not a pretrained tag of {name}); "
        + how_to_provide(name, tags[0] if tags else None)
    )


def masked_crop(image: np.ndarray, origin: tuple[int, int], mask: np.ndarray, size: int, fill) -> np.ndarray:
    """A segment as CLIP sees it: (size, size, 3) RGB uint8.

    ``mask`` is the segment's bool mask inside its box, whose top-left corner is
    ``origin`` in ``image`` (BGR). Pixels outside the mask become ``fill`` (RGB); the box
    is centred on a square a quarter larger than its longer side, so the segment's shape
    stays whole and undistorted.
    """
    x0, y0 = origin
    h, w = mask.shape
    side = max(4, int(np.ceil(max(h, w) * 1.25)))
    square = np.empty((side, side, 3), np.uint8)
    square[:] = fill
    top, left = (side - h) // 2, (side - w) // 2
    patch = image[y0 : y0 + h, x0 : x0 + w, ::-1]
    window = square[top : top + h, left : left + w]
    window[mask] = patch[mask]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(square, (size, size), interpolation=interpolation)


class ClipEncoder:
    """An open_clip model that turns texts and masked crops into unit embeddings.

    Use :func:`clip_encoder` to get the process-wide instance for a checkpoint.
    """

    def __init__(
        self, weights: ClipWeights, *, device: str = "auto", batch_size: int = 16, image_size: int | None = None
    ) -> None:
        self.weights = weights
        self._image_size = image_size
        self.batch_size = batch_size
        self.text_encodes = 0  # how many strings went through the text encoder
        self._texts: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._load(device)

    def _load(self, device: str) -> None:
        import torch

        from inspector.engine.segmenter import pick_device

        open_clip = _open_clip()
        if self.weights.config is not None:
            open_clip.add_model_config(self.weights.config)
        quick_gelu = False
        if self.weights.tag:
            quick_gelu = bool(open_clip.get_pretrained_cfg(self.weights.model, self.weights.tag).get("quick_gelu"))
        self._device = pick_device(device)
        try:
            model = open_clip.create_model(
                self.weights.model,
                pretrained=str(self.weights.path),
                device=self._device,
                force_quick_gelu=quick_gelu,
                # A smaller side costs quadratically less; positional embeddings are resampled.
                force_image_size=self._image_size,
            )
        except Exception as exc:  # a wrong or damaged checkpoint fails in many ways
            raise ClipUnavailable(f"cannot load CLIP {self.weights.model} from {self.weights.path}: {exc}") from exc
        self._model = model.eval()
        self._tokenizer = open_clip.get_tokenizer(self.weights.model)
        self._torch = torch
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        size = model.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self._mean = np.asarray(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN), np.float32)
        self._std = np.asarray(cfg.get("std", open_clip.OPENAI_DATASET_STD), np.float32)
        self.fill = tuple(round(float(v) * 255) for v in self._mean)
        self.logit_scale = float(model.logit_scale.exp().clamp(max=100).item())

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(K, D) unit embeddings; each string is encoded once per process."""
        with self._lock:
            new = [t for t in dict.fromkeys(texts) if t not in self._texts]
            if new:
                with self._torch.inference_mode():
                    tokens = self._tokenizer(new).to(self._device)
                    features = self._model.encode_text(tokens).float()
                    features = self._torch.nn.functional.normalize(features, dim=-1).cpu().numpy()
                self.text_encodes += len(new)
                self._texts.update(zip(new, features, strict=True))
            return np.stack([self._texts[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)

    def encode_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) unit embeddings of (size, size, 3) RGB uint8 crops, in batches."""
        out = []
        for start in range(0, len(crops), self.batch_size):
            batch = np.stack(crops[start : start + self.batch_size]).astype(np.float32) / 255.0
            batch = (batch - self._mean) / self._std
            tensor = self._torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).to(self._device)
            with self._lock, self._torch.inference_mode():
                features = self._model.encode_image(tensor).float()
                out.append(self._torch.nn.functional.normalize(features, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def crops(self, image: np.ndarray, patches: Sequence[tuple[tuple[int, int], np.ndarray]]) -> list[np.ndarray]:
        """Masked crops of segments given as ((x0, y0), mask in box) pairs."""
        return [masked_crop(image, origin, mask, self.image_size, self.fill) for origin, mask in patches]


_encoders: dict[tuple, ClipEncoder] = {}
_encoders_lock = threading.Lock()


def clip_encoder(weights: ClipWeights, *, device: str = "auto", image_size: int | None = None) -> ClipEncoder:
    """The process-wide encoder of a checkpoint: loaded on first use, then shared."""
    from inspector.engine.segmenter import pick_device

    path = weights.path.resolve()
    stat = path.stat()
    key = (weights.model, str(path), stat.st_size, stat.st_mtime_ns, str(pick_device(device)), image_size)
    with _encoders_lock:
        if key not in _encoders:
            _encoders[key] = ClipEncoder(weights, device=device, image_size=image_size)
        return _encoders[key]


@dataclass(frozen=True)
class Classification:
    """The best class of one segment.

    ``label`` is None when no class reaches the threshold; ``negative`` is true when
    the best class is a negative one (a normal surface), which drops the segment.
    """

    label: str | None
    score: float
    negative: bool = False


@dataclass(frozen=True)
class Prototypes:
    """Points in embedding space that stand for the classes, with their names."""

    embeddings: np.ndarray  # (K, D) unit vectors
    names: tuple[str, ...]  # class name of each prototype
    negative: frozenset[str] = frozenset()


def class_probabilities(
    embeddings: np.ndarray, prototypes: Prototypes, logit_scale: float
) -> tuple[tuple[str, ...], np.ndarray]:
    """Per-class probabilities (N, C) of unit image embeddings, and the class names."""
    classes = tuple(dict.fromkeys(prototypes.names))
    if len(embeddings) == 0 or not classes:
        return classes, np.zeros((len(embeddings), len(classes)))
    logits = logit_scale * (embeddings @ prototypes.embeddings.T).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    owner = np.array([classes.index(n) for n in prototypes.names])
    per_class = np.zeros((len(embeddings), len(classes)))
    np.add.at(per_class.T, owner, probs.T)
    return classes, per_class


def classify(
    embeddings: np.ndarray, prototypes: Prototypes, *, logit_scale: float, threshold: float
) -> list[Classification]:
    """The best class of each segment; below ``threshold`` it stays unlabelled."""
    classes, probs = class_probabilities(embeddings, prototypes, logit_scale)
    out = []
    for row in probs:
        best = int(np.argmax(row))
        name, score = classes[best], float(row[best])
        if name in prototypes.negative:
            out.append(Classification(name, score, negative=True))
        else:
            out.append(Classification(name if score >= threshold else None, score))
    return out


def mean_unit(vectors: np.ndarray) -> np.ndarray:
    """The normalised mean of unit vectors (a prompt ensemble, a few-shot class)."""
    mean = np.asarray(vectors, np.float64).mean(axis=0)
    return (mean / max(np.linalg.norm(mean), 1e-12)).astype(np.float32)


class SegmentClassifier:
    """Text and exemplar classes for segments of images.

    Args:
        encoder: a :class:`ClipEncoder` (or anything with ``encode_texts``,
            ``encode_crops``, ``crops`` and ``logit_scale``).
        classes: positive class names, e.g. ``("scratch", "stain")``.
        negatives: negative class names, e.g. ``("a normal surface",)``.
        threshold: the probability a class needs to label a segment.
        templates: the prompt ensemble; ``{}`` is replaced by the class name.
    """

    def __init__(
        self,
        encoder,
        *,
        classes: Sequence[str] = (),
        negatives: Sequence[str] = (),
        threshold: float = 0.5,
        templates: Sequence[str] = TEMPLATES,
    ) -> None:
        self.encoder = encoder
        self.threshold = threshold
        self.templates = tuple(templates)
        names = list(dict.fromkeys(classes)) + [n for n in dict.fromkeys(negatives) if n not in classes]
        vectors = [self._text_prototype(n) for n in names]
        self._negative = frozenset(n for n in negatives if n not in classes)
        self._names = tuple(names)
        self._vectors = vectors

    def _text_prototype(self, name: str) -> np.ndarray:
        texts = [t.format(name) for t in self.templates] if self.templates else [name]
        return mean_unit(self.encoder.encode_texts(texts))

    def add_exemplars(self, name: str, embeddings: np.ndarray, *, negative: bool = False) -> None:
        """A few-shot prototype for ``name`` from image embeddings of example segments."""
        if len(embeddings) == 0:
            return
        self._names = (*self._names, name)
        self._vectors = [*self._vectors, mean_unit(embeddings)]
        if negative:
            self._negative = self._negative | {name}

    @property
    def prototypes(self) -> Prototypes:
        return Prototypes(np.stack(self._vectors) if self._vectors else np.zeros((0, 1)), self._names, self._negative)

    def embed(self, image: np.ndarray, patches: Sequence[tuple[tuple[int, int], np.ndarray]]) -> np.ndarray:
        """Image embeddings of segments of ``image`` given as ((x0, y0), mask in box) pairs."""
        if not patches:
            return np.zeros((0, 0), np.float32)
        return self.encoder.encode_crops(self.encoder.crops(image, patches))

    def classify(self, image: np.ndarray, patches: Sequence[tuple[tuple[int, int], np.ndarray]]):
        """The best class of each segment (see :class:`Classification`)."""
        if not patches:
            return []
        return classify(
            self.embed(image, patches),
            self.prototypes,
            logit_scale=self.encoder.logit_scale,
            threshold=self.threshold,
        )
