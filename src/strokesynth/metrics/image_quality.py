"""Image quality of a synthesised image against the real one: SSIM, PSNR and MAE inside masks.

Both images must be in the same intensity units with a known ``data_range`` (strokesynth's
synthesised DWI and the real DWI are compared after the same normalisation to [0, 1], so
``data_range=1``).

- **SSIM** (Wang et al. 2004): Gaussian window σ = 1.5 px truncated at 3.5 σ (11x11),
  K1 = 0.01, K2 = 0.03, population (not sample) covariances, reflected borders; computed per
  axial slice (thick CTP slabs are 2D images stacked), then averaged over the voxels of a
  mask. The map is ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, full=True)`` slice by slice; what strokesynth adds is
  the masking (brain, lesion box), which scikit-image, pytorch-msssim, torchmetrics and MONAI
  do not offer.
- **PSNR**: ``10 log10(data_range² / MSE)`` with the MSE over the mask's voxels.
- **Regions**: *brain* (the caller's brain mask) and *lesion box*: the bounding box of the
  reference lesion, grown by ``margin_px`` in-plane and limited to the slices that hold
  lesion, intersected with the brain. A case without a lesion has no box: its local values
  are NaN and are counted as undefined in summaries, never dropped.
- **Lesion contrast**: mean intensity in the reference lesion over that of the rest of the
  brain, for the generated and for the real image. SSIM and PSNR are dominated by anatomy and
  noise; this says whether the synthesis shows the lesion at all (real DWI: > 1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from strokesynth.data.case import Case

QUALITY_METRICS = ("ssim_brain", "psnr_brain", "mae_brain", "ssim_lesion", "psnr_lesion", "mae_lesion",
                   "contrast_generated", "contrast_real")
NAN = float("nan")


def ssim_map(x: np.ndarray, y: np.ndarray, *, data_range: float = 1.0, sigma: float = 1.5,
             k1: float = 0.01, k2: float = 0.03) -> np.ndarray:
    """Local SSIM of two images, per axial slice (scikit-image's, slice by slice).

    Args:
        x, y: (X, Y) images or (X, Y, Z) volumes of the same shape.
        data_range: max - min of the intensity scale.

    Returns:
        float64 array of the input shape with the SSIM of each pixel's window.
    """
    from skimage.metrics import structural_similarity

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    if x.ndim not in (2, 3):
        raise ValueError(f"expected (X, Y) or (X, Y, Z) images, got shape {x.shape}")

    def one(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        _, full = structural_similarity(a, b, data_range=data_range, gaussian_weights=True, sigma=sigma,
                                        use_sample_covariance=False, K1=k1, K2=k2, full=True)
        return full

    if x.ndim == 2:
        return one(x, y)
    return np.stack([one(x[..., z], y[..., z]) for z in range(x.shape[2])], axis=-1)


def psnr(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over ``mask`` (all voxels if None); inf for identical images."""
    d = (np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2
    if mask is not None:
        d = d[np.asarray(mask, bool)]
    if d.size == 0:
        return NAN
    mse = float(d.mean())
    return math.inf if mse == 0 else 10 * math.log10(data_range ** 2 / mse)


def lesion_box(lesion: np.ndarray, margin_px: int = 8) -> np.ndarray | None:
    """Boolean (X, Y, Z) box around the lesion: in-plane bounds + ``margin_px``, lesion slices only."""
    lesion = np.asarray(lesion) > 0
    if not lesion.any():
        return None
    box = np.zeros(lesion.shape, bool)
    idx = [np.flatnonzero(lesion.any(axis=tuple(j for j in range(lesion.ndim) if j != i))) for i in range(lesion.ndim)]
    sl = []
    for axis, ix in enumerate(idx):
        m = margin_px if axis < 2 else 0
        sl.append(slice(max(int(ix[0]) - m, 0), min(int(ix[-1]) + m + 1, lesion.shape[axis])))
    box[tuple(sl)] = True
    if lesion.ndim == 3:  # only the slices that hold lesion
        box[:, :, ~lesion.any(axis=(0, 1))] = False
    return box


def image_quality(generated: np.ndarray, real: np.ndarray, brain: np.ndarray, lesion: np.ndarray | None = None,
                  *, data_range: float = 1.0, margin_px: int = 8) -> dict[str, Any]:
    """SSIM, PSNR (dB) and MAE of ``generated`` against ``real`` in the brain and the lesion box.

    Args:
        generated, real: (X, Y, Z) images in the same units.
        brain: (X, Y, Z) brain mask; empty means the whole image.
        lesion: (X, Y, Z) reference lesion mask, or None.

    Returns:
        The :data:`QUALITY_METRICS` (NaN where a region is empty) and ``box_voxels``.
    """
    generated = np.asarray(generated, np.float64)
    real = np.asarray(real, np.float64)
    if generated.shape != real.shape:
        raise ValueError(f"generated {generated.shape} and real {real.shape} differ in shape")
    brain = np.asarray(brain, bool)
    if not brain.any():
        brain = np.ones(real.shape, bool)
    smap = ssim_map(generated, real, data_range=data_range)
    err = np.abs(generated - real)
    out: dict[str, Any] = {"ssim_brain": float(smap[brain].mean()), "psnr_brain": psnr(generated, real, brain,
                                                                                      data_range=data_range),
                           "mae_brain": float(err[brain].mean())}
    box = lesion_box(lesion, margin_px) if lesion is not None else None
    region = box & brain if box is not None else None
    if region is None or not region.any():
        out.update(ssim_lesion=NAN, psnr_lesion=NAN, mae_lesion=NAN, box_voxels=0)
    else:
        out.update(ssim_lesion=float(smap[region].mean()),
                   psnr_lesion=psnr(generated, real, region, data_range=data_range),
                   mae_lesion=float(err[region].mean()), box_voxels=int(region.sum()))
    les = np.asarray(lesion) > 0 if lesion is not None else np.zeros(real.shape, bool)
    out["contrast_generated"] = lesion_contrast(generated, les, brain)
    out["contrast_real"] = lesion_contrast(real, les, brain)
    return out


def lesion_contrast(image: np.ndarray, lesion: np.ndarray, brain: np.ndarray) -> float:
    """Mean intensity in the lesion (inside the brain) over the mean in the rest of the brain.

    Whether a synthesis shows the lesion: a real b=1000 DWI core is about 2x brighter than
    normal tissue. NaN without lesion voxels in the brain or with a non-positive denominator.
    """
    lesion = np.asarray(lesion, bool)
    brain = np.asarray(brain, bool)
    inside, rest = lesion & brain, brain & ~lesion
    den = float(image[rest].mean()) if rest.any() else 0.0
    return float(image[inside].mean()) / den if inside.any() and den > 0 else NAN


def brain_mask(case: Case) -> np.ndarray:
    """Where image-quality metrics are taken: non-zero perfusion maps (skull-stripped), else all voxels."""
    for key in ("cbf", "cbv", "tmax", "mtt"):
        if key in case:
            return np.asarray(case[key].array) != 0
    return np.ones(case.spatial_shape, bool)
