"""Rules: candidate defects among the image's segments, held against the reference's
(``engine/rules.py``), on the low-resolution grid."""

from __future__ import annotations

from inspector.engine.change import changed_fractions, pixels_on_grid
from inspector.engine.regions import defect_candidates
from inspector.engine.rules import on_grid
from inspector.engine.stages import ImageWork, Stage, StageContext


def _change_meter(work: ImageWork, context: StageContext):
    """How much of each of some segments differs from the reference (engine/change.py)."""
    segmentation = work.segmentation
    grid = segmentation.lowres_size
    image = pixels_on_grid(work.registration.network_input, grid)
    reference = context.reference.view_at(grid).astype("float32")
    return lambda indices: changed_fractions(image, reference, segmentation.masks[indices], work.regions.part_region)


def run(work: ImageWork, context: StageContext) -> None:
    recipe, reference, segmentation = context.recipe, context.reference, work.segmentation
    work.reference_masks = on_grid(reference.segmentation.masks, segmentation.masks.shape[1:])
    # The pixels are compared with the reference's only where the registration is fine;
    # elsewhere the comparison would mostly see the registration's error.
    weigh_change = work.registration.fine and recipe.defects.changed_fraction
    work.candidates = defect_candidates(
        segmentation,
        work.regions,
        recipe.defects,
        reference_masks=work.reference_masks,
        reference_features=reference.features,
        min_score=recipe.model.conf,
        changed=_change_meter(work, context) if weigh_change else None,
    )


STAGE = Stage("rules", run, timing="rules", wanted=lambda recipe: recipe.uses_segments)
