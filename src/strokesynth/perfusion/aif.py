"""Arterial and venous input functions: a gamma-variate model and automatic selection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strokesynth.errors import DataError


def gamma_variate(t: np.ndarray, t0: float, alpha: float, beta: float, peak: float) -> np.ndarray:
    """Gamma-variate bolus ``peak * ((t - t0) / (αβ))^α · exp(α - (t - t0)/β)`` for ``t > t0``.

    The curve is 0 before ``t0`` and reaches ``peak`` at ``t0 + α·β`` (times in s).
    """
    s = np.clip((np.asarray(t, dtype=np.float64) - t0) / (alpha * beta), 0.0, None)
    with np.errstate(divide="ignore"):
        out = peak * np.exp(alpha * (np.log(np.where(s > 0, s, 1.0)) + 1.0 - s))
    return np.where(s > 0, out, 0.0)


@dataclass
class InputFunction:
    """A selected input function.

    Attributes:
        curve: ``(T,)`` mean baseline-subtracted enhancement of the chosen voxels.
        voxels: ``(n, 3)`` indices of the chosen voxels.
        peak_time: time of the curve maximum, s.
    """

    curve: np.ndarray
    voxels: np.ndarray
    peak_time: float


def curve_features(curves: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """Peak height, time to peak (s), area (unit·s) and width (area / peak, s) of ``(N, T)`` curves."""
    peak = curves.max(axis=1)
    ttp = curves.argmax(axis=1) * dt
    area = np.clip(curves, 0, None).sum(axis=1) * dt
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(peak > 0, area / peak, np.inf)
    return {"peak": peak, "ttp": ttp, "area": area, "width": width}


def select_aif(
    enhancement: np.ndarray,
    mask: np.ndarray,
    dt: float,
    *,
    n_voxels: int = 6,
    where: str = "AIF",
) -> InputFunction:
    """Pick arterial voxels: early, high and narrow enhancement.

    Among voxels of ``mask`` whose curve returns below half its peak by the last frame and
    whose peak is not on the first or last frame, keep the 0.1 % with the highest peaks (at
    least ``4 * n_voxels``), then the earlier half by time to peak, then the ``n_voxels``
    narrowest (area / peak).

    Args:
        enhancement: ``(X, Y, Z, T)`` baseline-subtracted enhancement.
        mask: ``(X, Y, Z)`` bool, where to look (brain, or a user's artery mask).
        dt: frame interval, s.
    """
    idx = np.argwhere(mask)
    if len(idx) == 0:
        raise DataError(where, "no voxels to choose an AIF from (empty mask)")
    curves = enhancement[mask]
    f = curve_features(curves, dt)
    n_t = curves.shape[1]
    k = curves.argmax(axis=1)
    ok = (k > 0) & (k < n_t - 1) & (curves[:, -1] < 0.5 * f["peak"]) & (f["peak"] > 0)
    if ok.sum() < n_voxels:
        raise DataError(where, f"only {int(ok.sum())} voxel(s) with a complete bolus; cannot choose an AIF")
    cand = np.flatnonzero(ok)
    top = cand[np.argsort(-f["peak"][cand])][: max(n_voxels * 4, int(np.ceil(0.001 * len(cand))))]
    early = top[np.argsort(f["ttp"][top], kind="stable")][: max(n_voxels * 2, len(top) // 2)]
    chosen = early[np.argsort(f["width"][early], kind="stable")][:n_voxels]
    curve = curves[chosen].mean(axis=0, dtype=np.float64)
    return InputFunction(curve.astype(np.float32), idx[chosen], float(curve.argmax() * dt))


def select_vof(
    enhancement: np.ndarray,
    mask: np.ndarray,
    dt: float,
    aif: InputFunction,
    *,
    n_voxels: int = 6,
    where: str = "VOF",
) -> InputFunction:
    """Pick venous voxels: the largest area among curves peaking at least 2 s after the AIF whose
    curve is a bolus passage (back below half its peak by the last frame), not a step (a voxel
    that a moved edge of bone or air crossed has a large, late area too)."""
    idx = np.argwhere(mask)
    curves = enhancement[mask]
    f = curve_features(curves, dt)
    passage = curves[:, -1] < 0.5 * f["peak"]
    cand = np.flatnonzero((f["ttp"] >= aif.peak_time + 2.0) & passage)
    if len(cand) < n_voxels:
        raise DataError(where, "too few late-peaking voxels to choose a venous output function")
    chosen = cand[np.argsort(-f["area"][cand])][:n_voxels]
    curve = curves[chosen].mean(axis=0, dtype=np.float64)
    return InputFunction(curve.astype(np.float32), idx[chosen], float(curve.argmax() * dt))


def venous_scale(aif: np.ndarray, vof: np.ndarray) -> float:
    """Factor ∫VOF / ∫AIF that corrects a partial-volume-diluted AIF (never below 1)."""
    a = float(np.clip(aif, 0, None).sum())
    v = float(np.clip(vof, 0, None).sum())
    if a <= 0:
        raise DataError("AIF", "the AIF has no positive area")
    return max(1.0, v / a)
