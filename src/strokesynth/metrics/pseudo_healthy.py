"""Scores of pseudo-healthy images (Xia, Chartsias & Tsaftaris), per slice.

- **identity**: masked MS-SSIM (:func:`strokesynth.metrics.msssim.masked_ms_ssim`) of the
  pseudo-healthy image and the input outside the lesion, weight ``1 - m_p``; on healthy slices
  the plain MS-SSIM of output and input (a healthy slice should pass unchanged).
- **healthiness**: ``h = 1 - mean(lesion pixels f_pre finds in the pseudo-healthy images) /
  mean(lesion pixels of the real masks)``; per slice ``h_i = 1 - found_i / mean_real`` so that
  the mean of ``h_i`` is exactly ``h`` and an SD can be given.
- **Dice** of a binary detection against the mask, per slice (both empty: 1).
"""

from __future__ import annotations

import numpy as np
import torch

from strokesynth.metrics.msssim import masked_ms_ssim


def slice_dice(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-slice Dice of ``(N, ...)`` binary arrays (1 where both are empty)."""
    p = pred.reshape(len(pred), -1).astype(bool)
    r = ref.reshape(len(ref), -1).astype(bool)
    inter = (p & r).sum(1)
    den = p.sum(1) + r.sum(1)
    return np.where(den == 0, 1.0, 2.0 * inter / np.maximum(den, 1))


def identity(pseudo: np.ndarray, image: np.ndarray, lesion: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Masked MS-SSIM per slice of ``(N, 1, S, S)`` arrays in [0, 1], lesion left out; and the scales used."""
    w = None if lesion is None else torch.from_numpy(1.0 - lesion.astype(np.float64))
    value, scales = masked_ms_ssim(torch.from_numpy(pseudo.astype(np.float64)),
                                   torch.from_numpy(image.astype(np.float64)), w)
    return value.numpy(), scales


def healthiness(found_px: np.ndarray, real_px: np.ndarray) -> np.ndarray:
    """Per-slice healthiness ``1 - found_i / mean(real)`` (its mean is the paper's ``h``)."""
    mean_real = float(np.mean(real_px))
    return 1.0 - np.asarray(found_px, float) / max(mean_real, 1e-9)


def best_threshold(score: np.ndarray, ref: np.ndarray, candidates: np.ndarray | None = None) -> tuple[float, float]:
    """The threshold of ``score`` with the best mean per-slice Dice against ``ref`` (call it on
    training slices only), and that Dice."""
    cands = np.linspace(0.02, 0.6, 30) if candidates is None else candidates
    dices = [float(slice_dice(score > t, ref).mean()) for t in cands]
    k = int(np.argmax(dices))
    return float(cands[k]), dices[k]
