"""The shipped recipes, declared (light modules: no torch). A new paper adds its declaration
module and one import line here."""

from strokesynth.recipes.catalog import (  # noqa: F401 - importing registers them
    ctmr_cgan,
    labelmap_augmentation,
    pseudo_dwi,
    pseudo_healthy,
    seg_comparison,
)
