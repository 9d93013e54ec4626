"""Recipes: the typed, versioned description of how one product is inspected."""

from inspector.recipe.io import dump_recipe, load_recipe, parse_recipe, recipe_hash, save_recipe
from inspector.recipe.model import SCHEMA_VERSION, Recipe

__all__ = ["SCHEMA_VERSION", "Recipe", "dump_recipe", "load_recipe", "parse_recipe", "recipe_hash", "save_recipe"]
