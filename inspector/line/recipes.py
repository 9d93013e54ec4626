"""The recipes a station can switch between: a folder of recipe files, each product by
its recipe's name (what a PLC asks for when it switches jobs)."""

from __future__ import annotations

import logging
from pathlib import Path

from inspector.errors import RecipeError
from inspector.recipe.io import load_recipe
from inspector.recipe.model import Recipe

log = logging.getLogger(__name__)

RECIPE_SUFFIXES = (".yaml", ".yml")


class RecipeShelf:
    """Products found in ``folder``; a file that is not a usable recipe is reported
    (``problems``) and left out, never the end of the station."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.problems: list[str] = []
        self._files: dict[str, Path] = {}

    def scan(self) -> tuple[str, ...]:
        """Look at the folder again; returns the products, sorted by name."""
        if not self.folder.is_dir():
            raise RecipeError(f"{self.folder}: no such recipes folder")
        files: dict[str, Path] = {}
        problems = []
        for path in sorted(p for p in self.folder.iterdir() if p.suffix.lower() in RECIPE_SUFFIXES):
            try:
                recipe = load_recipe(path)
            except RecipeError as exc:
                problems.append(str(exc))
                continue
            if recipe.name in files:
                problems.append(f"{path}: product {recipe.name!r} is also {files[recipe.name]}; the first is used")
                continue
            files[recipe.name] = path
        for problem in problems:
            if problem not in self.problems:
                log.warning("%s", problem)
        self._files, self.problems = files, problems
        return self.products

    @property
    def products(self) -> tuple[str, ...]:
        return tuple(sorted(self._files))

    def load(self, product: str) -> Recipe:
        """The product's recipe, read again from its file (it may have been edited)."""
        path = self._files.get(product)
        if path is None:
            self.scan()
            path = self._files.get(product)
        if path is None:
            known = ", ".join(self.products) or "none"
            raise RecipeError(f"no recipe for product {product!r} in {self.folder} (products: {known})")
        return load_recipe(path)
