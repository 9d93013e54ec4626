"""Checks of a recipe against the world: its reference image, prompts and weights."""

from __future__ import annotations

import numpy as np

from inspector.engine.image import read_image
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
        ("defects.exemplars", recipe.defects.exemplars),
    ]
    for field, items in points:
        for i, (x, y) in enumerate(items):
            if not (0 <= x < w and 0 <= y < h):
                problems.append(f"{field}[{i}]: point ({x:g}, {y:g}) is outside the {w}x{h} reference image")
    return problems


def load_reference(recipe: Recipe) -> np.ndarray:
    """The recipe's reference image, or a RecipeError naming the recipe and the file."""
    origin = recipe.source or "recipe"
    try:
        return read_image(recipe.reference_path)
    except InspectorError as exc:
        raise RecipeError(f"{origin}: product.reference_image: {exc}") from None


def validate_recipe(recipe: Recipe) -> None:
    """Everything that must hold before a recipe can inspect anything.

    Raises:
        RecipeError: listing every problem, each with the recipe file and field.
    """
    origin = recipe.source or "recipe"
    problems = []
    try:
        problems += reference_problems(recipe, load_reference(recipe))
    except RecipeError as exc:
        problems.append(str(exc).removeprefix(f"{origin}: "))
    try:
        resolve_weights(recipe.weights_spec, expected_sha256=recipe.model.sha256)
    except InspectorError as exc:
        problems.append(f"model.weights: {exc}")
    if recipe.defects.classes:
        problems.append(
            "defects.classes: text classes need CLIP (open-clip-torch and its weights), "
            "which this installation does not provide yet; remove the classes to inspect without them"
        )
    if problems:
        raise RecipeError(f"{origin}: " + f"\n{origin}: ".join(problems))
