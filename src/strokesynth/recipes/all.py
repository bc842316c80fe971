"""Imports every shipped recipe so it registers itself (a new paper adds one line here)."""

from strokesynth.recipes import ctmr, labelmap_augmentation, pseudo_dwi, pseudo_healthy, segmentation  # noqa: F401
