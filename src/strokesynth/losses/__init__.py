"""Losses for segmentation (and, later, synthesis)."""

from strokesynth.losses.segmentation import (
    LOSSES,
    CrossEntropy,
    FocalLoss,
    dice_loss,
    generalized_dice_loss,
    lesion_fraction_weights,
    make_loss,
)

__all__ = ["LOSSES", "CrossEntropy", "FocalLoss", "dice_loss", "generalized_dice_loss", "lesion_fraction_weights",
           "make_loss"]
