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
# Where defects come from: segments held against the reference's, regions of the anomaly
# map of a taught recipe, or both; "auto": the anomaly map once the recipe is taught.
Detect = Literal["auto", "segments", "anomaly", "both"]

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
    detect: Detect = "auto"

    @property
    def uses_clip(self) -> bool:
        return bool(self.classes or self.exemplars)


@dataclass(frozen=True)
class AnomalySettings:
    """Learning what a good part looks like (``inspector teach``) and finding what does not.

    ``model`` is the normal model file beside the recipe that teaching wrote (None: not
    taught); ``threshold`` overrides its calibrated threshold; ``resolution`` is the
    shorter side, in pixels, of what the feature network is shown of the part;
    ``false_rejects`` the expected share of good parts over the threshold that teaching
    calibrates it for; ``border`` a band of image pixels along the part region's
    outline (and the frame's edge) where the anomaly map finds nothing.
    """

    model: str | None = None
    threshold: float | None = None
    resolution: int = 192
    false_rejects: float = 0.01
    border: float = 0.0  # image pixels along the part region's outline not searched


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
    anomaly: AnomalySettings = field(default_factory=AnomalySettings)
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

    @property
    def taught(self) -> bool:
        return self.anomaly.model is not None

    @property
    def detect(self) -> Detect:
        """Where defects come from, ``auto`` resolved (see ``DefectRules.detect``)."""
        if self.defects.detect == "auto":
            return "anomaly" if self.taught else "segments"
        return self.defects.detect

    @property
    def uses_segments(self) -> bool:
        """Whether segments are held against the reference's for defects."""
        return self.detect in ("segments", "both")

    @property
    def uses_anomaly(self) -> bool:
        """Whether the anomaly map of the taught model finds defects."""
        return self.taught and self.detect in ("anomaly", "both")
