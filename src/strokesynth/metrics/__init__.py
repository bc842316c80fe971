"""Evaluation metrics: segmentation (Dice, distances, volumes, lesion-wise)."""

from strokesynth.metrics.segmentation import (
    METRICS,
    SIZE_GROUPS,
    dice,
    evaluate_case,
    lesion_counts,
    size_group,
    summarize,
    summarize_by_size,
    surface_distances,
)

__all__ = ["METRICS", "SIZE_GROUPS", "dice", "evaluate_case", "lesion_counts", "size_group", "summarize",
           "summarize_by_size", "surface_distances"]
