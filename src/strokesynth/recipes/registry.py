"""The recipe registry: each paper's experiment by name (see :class:`strokesynth.recipes.recipe.Recipe`).

The shipped recipes are declared in :mod:`strokesynth.recipes.catalog` (one light module each),
imported on the first lookup; a new paper adds its own declaration and one import line there.
"""

from __future__ import annotations

from strokesynth.recipes.recipe import RecipeRegistry

#: recipe name -> :class:`~strokesynth.recipes.recipe.Recipe`
RECIPES = RecipeRegistry()
