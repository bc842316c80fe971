"""The recipe registry: each paper's experiment by name, with a one-line summary."""

from __future__ import annotations

from strokesynth.registry import Registry

#: recipe name -> its run function; ``RECIPES.info(name)["summary"]`` says what it reproduces
RECIPES: Registry = Registry("recipe", provider="strokesynth.recipes.all")
