"""The recipe: everything that turns a segmentation into a verdict for one product.

Plain frozen dataclasses; reading, writing and validating them is ``recipe.io``.
Coordinates are pixels of the reference image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SCHEMA_VERSION = 1

PointMode = Literal["merge", "instances"]
Window = Literal["image", "part"]
AlignmentMethod = Literal["none", "orb"]

Point = tuple[float, float]
LabelledPoint = tuple[float, float, int]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ModelSettings:
    weights: str = "inspector-seg-n"
    sha256: str | None = None  # pin: refuse other weights
    imgsz: int = 640
    conf: float = 0.25
    iou: float = 0.7
    point_mode: PointMode = "merge"
    # What the network sees: the whole image, or the window around the part (its
    # boxes and its segment on the reference, plus a margin) scaled to ``imgsz``. A
    # part that fills a fifth of the frame is then seen at several times the pixels.
    window: Window = "image"


@dataclass(frozen=True)
class AlignmentSettings:
    method: AlignmentMethod = "none"
    max_features: int = 1500
    min_inliers: int = 12


@dataclass(frozen=True)
class PartPrompts:
    """Prompts that select the product itself; empty means the whole image."""

    boxes: tuple[Box, ...] = ()
    points: tuple[LabelledPoint, ...] = ()


@dataclass(frozen=True)
class Exemplar:
    """A point on an example segment: a foreground point teaches a defect class, a
    background point a normal surface. ``image`` is None for the reference image."""

    x: float
    y: float
    label: int = 1  # 1 foreground (an example defect), 0 background (a normal surface)
    name: str | None = None  # the class it teaches; default "defect" or "normal"
    image: str | None = None

    @property
    def class_name(self) -> str:
        return self.name or ("defect" if self.label else "normal")


@dataclass(frozen=True)
class ClipSettings:
    """The CLIP model behind text classes and exemplars (open_clip names)."""

    model: str = "ViT-B-32"
    weights: str | None = None  # checkpoint path, file in the model folder, or pretrained tag
    image_size: int | None = None  # crop side CLIP sees; None: the model's own (224 for ViT-B-32)


@dataclass(frozen=True)
class DefectRules:
    min_area: float = 30.0  # image pixels
    max_area: float = 50_000.0
    allowed: int = 0
    inside_fraction: float = 0.8  # how much of a candidate must lie on the part
    match_reference: bool = True
    match_iou: float = 0.5  # a segment overlapping a reference segment this much is expected
    missing_features: bool = True  # a reference feature with no match is a defect
    # How much of a candidate must look different from the reference (0: not checked);
    # see engine/change.py.
    changed_fraction: float = 0.0
    # Also report visible differences from the reference that no segment explains.
    differences: bool = False
    classes: tuple[str, ...] = ()  # text classes (CLIP)
    negative_classes: tuple[str, ...] = ()  # a defect whose best class is one of these is dropped
    class_threshold: float = 0.5  # probability a class needs to label a defect
    exemplars: tuple[Exemplar, ...] = ()

    @property
    def uses_clip(self) -> bool:
        return bool(self.classes or self.exemplars)


@dataclass(frozen=True)
class Recipe:
    """One product's inspection recipe.

    ``source`` is the file it was read from (None for a new recipe); the reference
    image path is kept as written and resolved against the recipe's folder.
    """

    name: str
    reference_image: str
    description: str = ""
    model: ModelSettings = field(default_factory=ModelSettings)
    alignment: AlignmentSettings = field(default_factory=AlignmentSettings)
    part: PartPrompts = field(default_factory=PartPrompts)
    normal_points: tuple[Point, ...] = ()
    ignore_boxes: tuple[Box, ...] = ()
    defects: DefectRules = field(default_factory=DefectRules)
    clip: ClipSettings = field(default_factory=ClipSettings)
    schema_version: int = SCHEMA_VERSION
    source: Path | None = field(default=None, compare=False)

    @property
    def folder(self) -> Path:
        return self.source.parent if self.source is not None else Path.cwd()

    def resolve(self, relative: str) -> Path:
        """A path from the recipe, resolved against the recipe file's folder."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.folder / path

    @property
    def weights_spec(self) -> str | Path:
        """The model to load: a built-in or model-folder name, or a path next to the recipe."""
        weights = self.model.weights
        return self.resolve(weights) if ("/" in weights or "\\" in weights) else weights

    @property
    def reference_path(self) -> Path:
        return self.resolve(self.reference_image)
