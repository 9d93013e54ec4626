"""The stages one image goes through, in order, each in a module of its own.

A stage is a function of the image's work so far (:class:`ImageWork`) and the
pipeline's context (:class:`StageContext`: the recipe, the prepared reference, the
network): it reads what earlier stages left on the work and adds what it finds for the
later ones. A stage that finds the image cannot be inspected raises :class:`ImageError`,
which ends it as an ERROR result with the reason. Each stage is timed by the pipeline
under its ``timing`` key (several stages may add to one key: the keys are the
stages a user sees in results and benchmarks).

``inspector.engine.pipeline.STAGES`` lists them in order. Adding a stage is one new
module here, defining its function and its :class:`Stage`, and one line in that list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from inspector.engine.clip import SegmentClassifier
from inspector.engine.image import Picture
from inspector.engine.normal import NormalModel
from inspector.engine.reference import PreparedReference, SegmentFn
from inspector.engine.regions import Regions
from inspector.engine.rules import Candidate
from inspector.engine.types import PASS, AnomalyMap, Finding, Segmentation
from inspector.errors import EngineError
from inspector.recipe.model import Recipe


class ImageError(EngineError):
    """This image cannot be inspected; the message is its ERROR result's reason."""


@dataclass(frozen=True)
class StageContext:
    """What every image of one pipeline shares: the recipe, the golden part, the network,
    and for a taught recipe its normal model."""

    recipe: Recipe
    reference: PreparedReference
    segment: SegmentFn
    classifier: SegmentClassifier | None = None
    normal: NormalModel | None = None  # what a good part looks like (a taught recipe)


@dataclass
class ImageWork:
    """One image on its way through the stages; each stage fills in its part.

    Attributes:
        picture: the image (perhaps decoded smaller; results are in full-size pixels).
        timings: milliseconds per timed stage.
        registration: the image registered to the reference (``stages.register``).
        segmentation: its segments, in reference pixels (``stages.segment``).
        regions: what the prompts select in them (``stages.select``).
        reference_masks: the reference's segments on the image's mask grid (``stages.rules``).
        candidates: defects found on the low-resolution grid (``stages.rules``).
        unsegmented: visible differences no segment explains (``stages.compare``).
        defects: candidates with their full-resolution masks ((x0, y0), bool patch),
            relabelled or dropped by their classes (``stages.masks``, ``stages.classify``).
        anomaly_score: a taught recipe's score of the image (``stages.anomaly``).
        anomaly_map: the anomaly map behind it (``stages.anomaly``).
        findings: what is reported, in the image's pixels (``stages.outline``).
        verdict: PASS or FAIL (``stages.verdict``).
    """

    picture: Picture
    timings: dict[str, float] = field(default_factory=dict)
    registration: object | None = None  # stages.register.Registration
    segmentation: Segmentation | None = None
    regions: Regions | None = None
    reference_masks: np.ndarray | None = None
    candidates: list[Candidate] = field(default_factory=list)
    unsegmented: list[Finding] = field(default_factory=list)
    defects: list[tuple[Candidate, tuple[tuple[int, int], np.ndarray]]] = field(default_factory=list)
    anomaly_score: float | None = None
    anomaly_map: AnomalyMap | None = None
    findings: tuple[Finding, ...] = ()
    verdict: str = PASS


@dataclass(frozen=True)
class Stage:
    """One step of inspecting an image.

    Attributes:
        name: what the stage is called (in traces and docs).
        run: the stage itself.
        timing: the timing key its time is added to; None for a stage that times
            itself (e.g. the network's own stages) or is too cheap to time.
        wanted: whether a recipe needs the stage at all (default: every recipe).
    """

    name: str
    run: Callable[[ImageWork, StageContext], None]
    timing: str | None = None
    wanted: Callable[[Recipe], bool] = field(default=lambda recipe: True)
