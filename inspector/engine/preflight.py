"""Pre-flight: the checks a recipe must pass before it inspects anything.

A recipe is pure data (``inspector.recipe``); whether its reference image can be read,
its prompts lie on it, its weights and CLIP checkpoint exist is a question for the
engine, asked here. ``inspector recipe validate``, ``inspector run`` and the GUI all run
exactly these checks.
"""

from __future__ import annotations

import numpy as np

from inspector.engine.backbone import weights_file
from inspector.engine.clip import clip_encoder, resolve_clip
from inspector.engine.image import read_image
from inspector.engine.normal_file import load_normal_model
from inspector.engine.weights import resolve_weights
from inspector.errors import InspectorError, RecipeError
from inspector.recipe.model import Recipe


def reference_problems(recipe: Recipe, image: np.ndarray) -> list[str]:
    """Prompts that fall outside the reference image."""
    h, w = image.shape[:2]
    problems = []
    boxes = [("part.boxes", recipe.part.boxes), ("ignore.boxes", recipe.ignore_boxes)]
    for field, items in boxes:
        for i, (x1, y1, x2, y2) in enumerate(items):
            if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
                problems.append(
                    f"{field}[{i}]: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is outside the {w}x{h} reference image"
                )
    points = [
        ("part.points", [p[:2] for p in recipe.part.points]),
        ("normal.points", recipe.normal_points),
        *((f"defects.exemplars[{i}]", [(e.x, e.y)]) for i, e in enumerate(recipe.defects.exemplars) if e.image is None),
    ]
    for field, items in points:
        for i, (x, y) in enumerate(items):
            if not (0 <= x < w and 0 <= y < h):
                where = field if field.startswith("defects.exemplars") else f"{field}[{i}]"
                problems.append(f"{where}: point ({x:g}, {y:g}) is outside the {w}x{h} reference image")
    return problems


def exemplar_problems(recipe: Recipe) -> list[str]:
    """Exemplars on their own images: the image must be readable and hold the point."""
    problems = []
    for i, e in enumerate(recipe.defects.exemplars):
        if e.image is None:
            continue
        try:
            h, w = read_image(recipe.resolve(e.image)).shape[:2]
        except InspectorError as exc:
            problems.append(f"defects.exemplars[{i}].image: {exc}")
            continue
        if not (0 <= e.x < w and 0 <= e.y < h):
            problems.append(f"defects.exemplars[{i}]: point ({e.x:g}, {e.y:g}) is outside the {w}x{h} image {e.image}")
    return problems


def load_reference(recipe: Recipe) -> np.ndarray:
    """The recipe's reference image, or a RecipeError naming the recipe and the file."""
    origin = recipe.source or "recipe"
    try:
        return read_image(recipe.reference_path)
    except InspectorError as exc:
        raise RecipeError(f"{origin}: product.reference_image: {exc}") from None


def setup_problems(recipe: Recipe, *, load_clip: bool = False) -> list[str]:
    """Problems with what a recipe needs besides its reference image: the model's
    weights, exemplar images, CLIP, and a taught recipe's normal model and feature
    network (see :func:`validate_recipe`)."""
    problems = []
    try:
        resolve_weights(recipe.weights_spec, expected_sha256=recipe.model.sha256)
    except InspectorError as exc:
        problems.append(f"model.weights: {exc}")
    problems += exemplar_problems(recipe)
    if recipe.taught:
        try:
            load_normal_model(recipe.resolve(recipe.anomaly.model))
            weights_file()
        except InspectorError as exc:
            problems.append(f"anomaly.model: {exc}")
    if recipe.defects.uses_clip:
        try:
            weights = resolve_clip(recipe.clip.model, recipe.clip.weights, base=recipe.folder)
            if load_clip:
                clip_encoder(weights, device="cpu", image_size=recipe.clip.image_size)
        except InspectorError as exc:
            what = "defects.classes" if recipe.defects.classes else "defects.exemplars"
            problems.append(f"{what}: need CLIP: {exc}")
    return problems


def checked_reference(recipe: Recipe) -> tuple[np.ndarray | None, list[str]]:
    """The recipe's reference image (None when it cannot be read) and its problems."""
    origin = recipe.source or "recipe"
    try:
        reference = load_reference(recipe)
    except RecipeError as exc:
        return None, [str(exc).removeprefix(f"{origin}: ")]
    return reference, reference_problems(recipe, reference)


def raise_problems(recipe: Recipe, problems: list[str]) -> None:
    """One RecipeError listing every problem, each line naming the recipe file; none, nothing."""
    if problems:
        origin = recipe.source or "recipe"
        raise RecipeError(f"{origin}: " + f"\n{origin}: ".join(problems))


def validate_recipe(recipe: Recipe, *, load_clip: bool = False) -> np.ndarray:
    """Everything that must hold before a recipe can inspect anything.

    With ``load_clip``, a recipe with classes also has its CLIP checkpoint loaded (not
    only found), so a damaged file is caught here rather than by the first image.

    Returns:
        The reference image it read, so that a pipeline need not decode it again.

    Raises:
        RecipeError: listing every problem, each with the recipe file and field.
    """
    reference, problems = checked_reference(recipe)
    raise_problems(recipe, problems + setup_problems(recipe, load_clip=load_clip))
    return reference
