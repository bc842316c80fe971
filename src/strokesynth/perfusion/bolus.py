"""CTA-like features of a raw 4D CTP: bolus window, temporal MIP, temporal resampling.

These follow Wang, Song et al. (ISLES 2018 winner): the accumulated intensity curve of the
scan, q(t) = sum over (brain) voxels of I(x, t), gives a start ``Ts``, the first frame whose
next ``K`` differences q(t+1) - q(t) are all positive (the bolus arrives), and an end ``Te``, the
last frame whose previous ``K`` differences are all negative (the end of the wash-out that
can still be told from noise). On the phantom's 48-frame scans (1.25 s per frame) this spans
about frames 8..42: arrival, peak and wash-out. :func:`cta_features` crops ``[Ts, Te]`` and
resamples it uniformly to ``C_e`` frames (6 in the paper), and takes the temporal MIP.
"""

from __future__ import annotations

import numpy as np

from strokesynth.errors import DataError


def accumulated_curve(ctp: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Sum of ``ctp`` ``(X, Y, Z, T)`` over the voxels of ``mask`` (all if None), per frame ``(T,)``."""
    if mask is None:
        return ctp.reshape(-1, ctp.shape[-1]).sum(axis=0, dtype=np.float64)
    return ctp[mask].sum(axis=0, dtype=np.float64)


def _first_run(sign: np.ndarray, k: int, start: int) -> int | None:
    """First index i >= start with sign[i:i+k] all True."""
    for i in range(start, len(sign) - k + 1):
        if sign[i:i + k].all():
            return i
    return None


def bolus_window(curve: np.ndarray, k: int = 5, where: str = "CTP") -> tuple[int, int]:
    """``(Ts, Te)`` frame indices of the bolus from an accumulated intensity curve ``(T,)``.

    Ts is the first frame t whose next ``k`` differences ``curve[t+1] - curve[t]``, ...,
    ``curve[t+k] - curve[t+k-1]`` are all positive; Te the last frame t whose previous ``k``
    differences (``curve[t-k+1] - curve[t-k]``, ..., ``curve[t] - curve[t-1]``) are all negative.
    Fallback (documented, not an error): a scan that never falls for ``k`` frames after Ts (stopped
    during the peak) ends at its last frame.

    Raises:
        DataError: fewer than ``k + 2`` frames, or a curve that never rises for ``k`` frames
            (a flat or noise-only scan: no bolus).
    """
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 1 or len(curve) < k + 2:
        raise DataError(where, f"need a 1-D curve of more than {k + 1} frames, got shape {curve.shape}")
    if not np.isfinite(curve).all():
        raise DataError(where, "the intensity curve holds NaN or Inf values")
    d = np.diff(curve)
    ts = _first_run(d > 0, k, 0)
    if ts is None:
        raise DataError(where, f"no bolus found: the intensity never rises for {k} consecutive frames")
    falls = [t for t in range(ts + k + 1, len(curve)) if (d[t - k:t] < 0).all()]
    return ts, (falls[-1] if falls else len(curve) - 1)


def temporal_mip(ctp: np.ndarray, start: int = 0, end: int | None = None) -> np.ndarray:
    """Maximum over frames ``start..end`` (inclusive) of ``(..., T)`` -> ``(...)``."""
    end = ctp.shape[-1] - 1 if end is None else end
    return ctp[..., start:end + 1].max(axis=-1)


def resample_frames(ctp: np.ndarray, start: int, end: int, n: int = 6) -> np.ndarray:
    """``n`` frames evenly spaced over ``start..end`` (inclusive) by linear interpolation.

    Args:
        ctp: ``(..., T)``.
    Returns:
        ``(..., n)`` float32.
    """
    if n < 1:
        raise DataError("resample_frames", f"need at least one frame, got {n}")
    if not 0 <= start <= end < ctp.shape[-1]:
        raise DataError("resample_frames", f"window {start}..{end} outside 0..{ctp.shape[-1] - 1}")
    pos = np.linspace(start, end, n)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, ctp.shape[-1] - 1)
    w = (pos - lo).astype(np.float32)
    return (ctp[..., lo] * (1 - w) + ctp[..., hi] * w).astype(np.float32)
