"""Teach a recipe from good images: the command line's and the GUI's one way to do it.

The images are read one at a time (a folder of 500 is never held in memory), taught
(``engine/teach.py``), the normal model is written beside the recipe, named by its
content, and the recipe is saved pointing to it: its content hash, stored with every
result, then names the exact model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from inspector.engine.image import Picture
from inspector.engine.normal_file import save_normal_model
from inspector.engine.pipeline import open_pipeline
from inspector.engine.teach import MAX_IMAGES, ImageCallback, TeachOutcome, teach_normal
from inspector.errors import InspectorError, RecipeError, SourceError
from inspector.recipe.io import load_recipe, save_recipe
from inspector.recipe.model import Recipe
from inspector.sources.files import FileSource
from inspector.sources.frame import Frame


@dataclass(frozen=True)
class TaughtRecipe:
    """A recipe taught from good images."""

    recipe: Recipe
    model_file: Path
    outcome: TeachOutcome

    def to_dict(self) -> dict:
        calibration = self.outcome.model.calibration
        return {
            "recipe": str(self.recipe.source),
            "model_file": str(self.model_file),
            "taught": len(self.outcome.taught),
            "left_out": [{"image": name, "why": why} for name, why in self.outcome.left_out],
            "threshold": round(calibration.threshold, 4),
            "false_rejects": calibration.false_rejects,
            "rule": calibration.rule,
            "scores": [round(s, 4) for s in calibration.scores],
            "bank_patches": len(self.outcome.model.bank),
            "resolution": self.outcome.model.resolution,
            "seconds": round(self.outcome.seconds, 2),
        }


def _pictures(frames: Iterator[Frame], min_side: int | None) -> Iterator[tuple[str, Picture | None, str | None]]:
    """Each frame decoded as inspection will decode it (see ``InspectionPipeline.decode_side``)."""
    for frame in frames:
        try:
            yield frame.name, frame.image_at(min_side), None
        except InspectorError as exc:
            yield frame.name, None, str(exc)


def teach_recipe(
    recipe_file: str | os.PathLike,
    sources: Sequence[str | os.PathLike],
    *,
    recursive: bool = False,
    resolution: int | None = None,
    false_rejects: float | None = None,
    device: str = "auto",
    on_image: ImageCallback | None = None,
) -> TaughtRecipe:
    """Teach the recipe in ``recipe_file`` from the good images in ``sources`` (files and
    folders) and save it; ``resolution`` and ``false_rejects`` replace the recipe's.

    Raises:
        RecipeError: the recipe cannot be read, checked or saved.
        InspectorError: no image could be taught.
    """
    recipe = load_recipe(recipe_file)
    missing = [str(path) for path in sources if not Path(path).exists()]
    if missing:
        raise SourceError(f"{', '.join(missing)}: no such file or folder")
    settings = replace(
        recipe.anomaly,
        resolution=resolution or recipe.anomaly.resolution,
        false_rejects=false_rejects or recipe.anomaly.false_rejects,
    )
    # The road to the part does not need the model being replaced (which may be gone).
    untaught = replace(recipe, anomaly=replace(settings, model=None, threshold=None))
    pipeline = open_pipeline(untaught, device=device)
    source = FileSource(list(sources), recursive=recursive)
    expected = sum(1 for _ in source.files())
    if expected == 0:
        raise InspectorError(f"no image files in {source.describe()}")
    if expected > MAX_IMAGES:
        raise InspectorError(f"{expected} images in {source.describe()}; at most {MAX_IMAGES} can be taught")
    outcome = teach_normal(
        pipeline,
        _pictures(source.frames(), pipeline.decode_side(anomaly=True)),
        expected_images=expected,
        resolution=settings.resolution,
        false_rejects=settings.false_rejects,
        on_image=on_image,
    )
    model_file = save_normal_model(
        outcome.model,
        recipe.folder,
        recipe.source.stem,
        product=recipe.name,
        taught_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        image_names=[Path(name).name for name in outcome.taught],
    )
    # A threshold set by hand belonged to the model being replaced: the new one's holds.
    taught = replace(recipe, anomaly=replace(settings, model=model_file.name, threshold=None))
    try:
        saved = save_recipe(taught, recipe.source)
    except RecipeError:
        model_file.unlink(missing_ok=True)
        raise
    return TaughtRecipe(saved, model_file, outcome)
