"""Evaluation metrics: segmentation (Dice, distances, volumes, lesion-wise) and image quality (SSIM, PSNR)."""

from strokesynth.metrics.image_quality import (
    QUALITY_METRICS,
    brain_mask,
    image_quality,
    lesion_box,
    lesion_contrast,
    psnr,
    ssim_map,
)
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

__all__ = ["METRICS", "QUALITY_METRICS", "SIZE_GROUPS", "brain_mask", "image_quality", "lesion_box", "lesion_contrast", "psnr", "ssim_map", "dice", "evaluate_case", "lesion_counts", "size_group", "summarize",
           "summarize_by_size", "surface_distances"]
