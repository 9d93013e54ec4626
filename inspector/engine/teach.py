"""Teaching a recipe what good parts look like: good images in, a normal model out.

Each good image takes the road an inspected one takes up to finding its part
(``InspectionPipeline.examine``: registered when the recipe registers, segmented, the
prompts applied), then the feature network is shown the same view of it that the
anomaly stage will be shown (``stages/anomaly.py``), and its patches on the part go to
the :class:`~inspector.engine.normal.Teacher`. Images that cannot be registered (where the
recipe registers images) or whose part is not found are left out, each with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from inspector.engine.backbone import backbone
from inspector.engine.image import Picture
from inspector.engine.normal import NormalModel, Teacher
from inspector.engine.pipeline import InspectionPipeline
from inspector.engine.stages.anomaly import anomaly_view, searched_region
from inspector.errors import EngineError, InspectorError

MAX_IMAGES = 500


@dataclass
class TeachOutcome:
    """A taught normal model, and what teaching made of each image."""

    model: NormalModel
    taught: list[str] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (image, why)
    seconds: float = 0.0


# Told (image name, None) for each image taught, (image name, reason) for one left out.
ImageCallback = Callable[[str, str | None], None]


def teach_normal(
    pipeline: InspectionPipeline,
    pictures: Iterable[tuple[str, Picture | None, str | None]],
    *,
    expected_images: int,
    resolution: int,
    false_rejects: float,
    on_image: ImageCallback | None = None,
) -> TeachOutcome:
    """Learn a normal model from good images.

    Args:
        pipeline: the recipe's pipeline (an untaught one: teaching does not need the
            old model).
        pictures: (name, picture, None), or (name, None, why it could not be read).
        expected_images: how many are coming (shares out the memory bound).
        resolution: pixels on the shorter side of the view the feature network sees.
        false_rejects: the expected share of good parts above the threshold.
        on_image: told of each image as it is taught or left out.

    Raises:
        EngineError: no image could be taught, or more than ``MAX_IMAGES`` were given.
    """
    started = time.perf_counter()
    teacher = Teacher(resolution=resolution, expected_images=expected_images)
    extractor = backbone()
    reference = pipeline.reference
    # A part the recipe would register but cannot would teach the view of a misplaced
    # part: left out, as one whose part is not found.
    registers = pipeline.recipe.alignment.method != "none"
    outcome_taught: list[str] = []
    left_out: list[tuple[str, str]] = []
    for name, picture, problem in pictures:
        if teacher.images >= MAX_IMAGES:
            raise EngineError(f"at most {MAX_IMAGES} good images can be taught; give fewer")
        if picture is not None:
            try:
                work = pipeline.examine(picture)
                if registers and work.registration.method == "relative position":
                    raise EngineError(f"{name}: not registered ({work.registration.unaligned})")
                view, _ = anomaly_view(picture, work.registration.warp, reference, resolution)
                teacher.add(extractor.features(view), searched_region(work, pipeline.recipe.anomaly.border))
            except InspectorError as exc:
                problem = str(exc)
        if problem is None:
            outcome_taught.append(name)
        else:
            left_out.append((name, problem))
        if on_image is not None:
            on_image(name, problem)
    if not outcome_taught:
        reasons = "; ".join(why for _, why in left_out[:3])
        raise EngineError("no good image could be taught" + (f" ({reasons})" if reasons else ""))
    model = teacher.finish(false_rejects=false_rejects)
    return TeachOutcome(model, outcome_taught, left_out, time.perf_counter() - started)
