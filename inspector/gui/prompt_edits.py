"""The Recipes tab's prompt tools as pure functions: a recipe and a click or drag in, the
edited recipe and the name of the edit (for the undo stack) out; None when nothing
changes. No Qt here."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from inspector.recipe.model import PartPrompts, Recipe

TOOLS = ("part box", "part point", "normal point", "ignore box", "erase")
Edit = tuple[Recipe, str] | None


def clicked(recipe: Recipe, tool: str, x: int, y: int, *, right: bool, radius: float) -> Edit:
    """A click at pixel (x, y): a part point (right: a background one), a normal point,
    or with the eraser (or a right click elsewhere) the prompt under the cursor removed."""
    if tool == "part point":
        points = (*recipe.part.points, (x, y, 0 if right else 1))
        return replace(recipe, part=replace(recipe.part, points=points)), (
            "add background point" if right else "add foreground point"
        )
    if tool == "normal point":
        return replace(recipe, normal_points=(*recipe.normal_points, (x, y))), "add normal point"
    if tool == "erase" or right:
        return erased(recipe, x, y, radius=radius)
    return None


def dragged(recipe: Recipe, tool: str, box: tuple[int, int, int, int]) -> Edit:
    """A box dragged: a part box or an ignore box."""
    if tool == "part box":
        return replace(recipe, part=replace(recipe.part, boxes=(*recipe.part.boxes, box))), "add part box"
    if tool == "ignore box":
        return replace(recipe, ignore_boxes=(*recipe.ignore_boxes, box)), "add ignore box"
    return None


def erased(recipe: Recipe, x: float, y: float, *, radius: float) -> Edit:
    """The nearest point prompt within ``radius`` of (x, y) removed, else the smallest box
    containing it."""
    r = recipe
    candidates = [(np.hypot(px - x, py - y), "part point", k) for k, (px, py, _) in enumerate(r.part.points)]
    candidates += [(np.hypot(px - x, py - y), "normal point", k) for k, (px, py) in enumerate(r.normal_points)]
    near = [c for c in candidates if c[0] <= radius]
    if near:
        _, kind, k = min(near)
        if kind == "part point":
            points = r.part.points[:k] + r.part.points[k + 1 :]
            return replace(r, part=replace(r.part, points=points)), "remove part point"
        return replace(r, normal_points=r.normal_points[:k] + r.normal_points[k + 1 :]), "remove normal point"
    boxes = [
        ((bx2 - bx1) * (by2 - by1), kind, k)
        for kind, items in (("part", r.part.boxes), ("ignore", r.ignore_boxes))
        for k, (bx1, by1, bx2, by2) in enumerate(items)
        if bx1 <= x <= bx2 and by1 <= y <= by2
    ]
    if not boxes:
        return None
    _, kind, k = min(boxes)
    if kind == "part":
        return replace(r, part=PartPrompts(r.part.boxes[:k] + r.part.boxes[k + 1 :], r.part.points)), "remove part box"
    return replace(r, ignore_boxes=r.ignore_boxes[:k] + r.ignore_boxes[k + 1 :]), "remove ignore box"


def moved(recipe: Recipe, kind: str, index: int, x: int, y: int) -> Edit:
    """A point prompt ("part point" or "normal point") dragged to pixel (x, y)."""
    r = recipe
    if kind == "part point" and 0 <= index < len(r.part.points):
        old = r.part.points[index]
        if old[:2] == (x, y):
            return None
        points = (*r.part.points[:index], (x, y, old[2]), *r.part.points[index + 1 :])
        return replace(r, part=replace(r.part, points=points)), "move part point"
    if kind == "normal point" and 0 <= index < len(r.normal_points):
        if r.normal_points[index] == (x, y):
            return None
        points = (*r.normal_points[:index], (x, y), *r.normal_points[index + 1 :])
        return replace(r, normal_points=points), "move normal point"
    return None


def resized(recipe: Recipe, kind: str, index: int, box: tuple[int, int, int, int]) -> Edit:
    """A box prompt ("part box" or "ignore box") given new corners; one under 2 pixels
    wide or high is left as it was (a box cannot be dragged away to nothing)."""
    x1, y1, x2, y2 = box
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    r = recipe
    if kind == "part box" and 0 <= index < len(r.part.boxes):
        if tuple(r.part.boxes[index]) == tuple(box):
            return None
        boxes = (*r.part.boxes[:index], box, *r.part.boxes[index + 1 :])
        return replace(r, part=replace(r.part, boxes=boxes)), "resize part box"
    if kind == "ignore box" and 0 <= index < len(r.ignore_boxes):
        if tuple(r.ignore_boxes[index]) == tuple(box):
            return None
        boxes = (*r.ignore_boxes[:index], box, *r.ignore_boxes[index + 1 :])
        return replace(r, ignore_boxes=boxes), "resize ignore box"
    return None
