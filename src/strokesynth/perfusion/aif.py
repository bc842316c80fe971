"""Arterial and venous input functions: a gamma-variate model and automatic selection.

The AIF is chosen on **arrival at sub-frame resolution**. Every tissue curve is read relative to
the AIF, so an AIF taken from a branch that fills 0.5-1.5 s after the internal carotid makes every
Tmax that much too early (negative in normal tissue, and a Tmax > 6 s region that is too small).
The time to peak, measured to the nearest frame (1-2 s), cannot tell those arteries apart;
the half-height crossing of each curve's rise, linearly interpolated between frames
(:func:`arrival_times`), can: on noise-free gamma-variate boluses at 1.25 s frames it follows
the true delay within 0.053 s (peak to peak over delays 0-1.2 s; a test). Among the voxels whose
curve is arterial (a complete bolus passage with one of the highest peaks), :func:`select_aif`
keeps those that arrive first.
"""

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
        peak_time: time of the curve maximum, s (parabolic sub-frame interpolation).
        arrival_time: time the curve's rise crosses half its peak, s (:func:`arrival_times`).
    """

    curve: np.ndarray
    voxels: np.ndarray
    peak_time: float
    arrival_time: float | None = None

    def describe(self) -> dict[str, float | list[float] | None]:
        """The analysis facts of this input function: arrival (s, half-height of its rise),
        peak time (s, sub-frame), peak (HU) and location (mean voxel index)."""
        loc = self.voxels.mean(axis=0).round(1).tolist() if len(self.voxels) else None
        return {"arrival_s": None if self.arrival_time is None else round(float(self.arrival_time), 3),
                "peak_time_s": round(float(self.peak_time), 3), "peak_hu": round(float(self.curve.max()), 2),
                "location_voxel": loc, "n_voxels": int(len(self.voxels))}


def curve_features(curves: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """Peak height, time to peak (s), area (unit·s) and width (area / peak, s) of ``(N, T)`` curves."""
    peak = curves.max(axis=1)
    ttp = curves.argmax(axis=1) * dt
    area = np.clip(curves, 0, None).sum(axis=1) * dt
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(peak > 0, area / peak, np.inf)
    return {"peak": peak, "ttp": ttp, "area": area, "width": width}


def arrival_times(curves: np.ndarray, dt: float) -> np.ndarray:
    """Bolus arrival of curves ``(N, T)``: the time (s) the rise before each curve's maximum
    crosses half of it, linearly interpolated between the two frames around the crossing (a
    curve already above half on its first frame arrives at 0). Unlike the frame of the peak, it
    resolves delays well below one frame interval."""
    curves = np.asarray(curves, np.float64)
    n, n_t = curves.shape
    k = curves.argmax(axis=1)
    half = 0.5 * curves[np.arange(n), k]
    frame = np.arange(n_t)[None, :]
    below = (curves < half[:, None]) & (frame < k[:, None])
    last = np.where(below, frame, -1).max(axis=1)  # the last frame below half before the peak
    lo = np.where(last >= 0, curves[np.arange(n), np.maximum(last, 0)], 0.0)
    hi = curves[np.arange(n), np.minimum(last + 1, n_t - 1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(hi > lo, (half - lo) / (hi - lo), 0.0)
    return ((last + np.clip(frac, 0.0, 1.0)) * dt).clip(min=0.0)


def peak_time(curve: np.ndarray, dt: float) -> float:
    """Time (s) of a curve's maximum, refined by the parabola through it and its neighbours."""
    c = np.asarray(curve, np.float64)
    k = int(c.argmax())
    if 0 < k < len(c) - 1:
        den = c[k - 1] - 2 * c[k] + c[k + 1]
        if den < 0:
            return float((k + np.clip(0.5 * (c[k - 1] - c[k + 1]) / den, -0.5, 0.5)) * dt)
    return float(k * dt)


#: AIF voxels are taken among curves arriving within this many seconds of the n-th earliest candidate
ARRIVAL_TOLERANCE_S = 0.25


class AifCandidates:
    """The arterial candidates of :func:`select_aif`, gathered slab by slab (a 1-3 GB CTP is never
    whole in float32), with the same choice as over the whole scan.

    Each :meth:`add` keeps the ``keep`` highest-peaked complete passages of its voxels; ``keep``
    (at least ``4 * n_voxels`` and 0.1 % of every voxel searched) is never fewer than the global
    choice takes, so :meth:`choose` sees all of them.

    Args:
        n_voxels: voxels averaged into the AIF.
        n_search: voxels searched in the whole scan (bounds the candidates kept per slab).
        shape: ``(X, Y, Z)`` of the scan (flat indices -> voxel indices).
    """

    def __init__(self, n_voxels: int, n_search: int, shape: tuple[int, int, int]) -> None:
        self.n_voxels = n_voxels
        self.keep = max(4 * n_voxels, int(np.ceil(0.001 * n_search)))
        self.shape = shape
        self.n_ok = 0
        self._flat: list[np.ndarray] = []
        self._peak: list[np.ndarray] = []
        self._curves: list[np.ndarray] = []

    def add(self, curves: np.ndarray, flat: np.ndarray) -> None:
        """Curves ``(N, T)`` of baseline-subtracted enhancement and their flat voxel indices ``(N,)``."""
        if len(curves) == 0:
            return
        n_t = curves.shape[1]
        peak = curves.max(axis=1)
        k = curves.argmax(axis=1)
        ok = (k > 0) & (k < n_t - 1) & (curves[:, -1] < 0.5 * peak) & (peak > 0)
        cand = np.flatnonzero(ok)
        self.n_ok += len(cand)
        top = cand[np.argsort(-peak[cand], kind="stable")][: self.keep]
        self._flat.append(np.asarray(flat)[top])
        self._peak.append(peak[top])
        self._curves.append(np.array(curves[top], np.float32))

    def choose(self, dt: float, rank: str = "arrival", where: str = "AIF") -> InputFunction:
        """The AIF of the candidates seen (see :func:`select_aif`)."""
        n_voxels = self.n_voxels
        if self.n_ok < n_voxels:
            raise DataError(where, f"only {self.n_ok} voxel(s) with a complete bolus; cannot choose an AIF")
        flat = np.concatenate(self._flat)
        peak = np.concatenate(self._peak)
        curves = np.concatenate(self._curves)
        order = np.lexsort((flat, -peak))  # highest peak first, ties in voxel order
        top = order[: max(n_voxels * 4, int(np.ceil(0.001 * self.n_ok)))]
        if rank == "arrival":
            arrival = arrival_times(curves[top], dt)
            order = np.argsort(arrival, kind="stable")
            # the n-th earliest is the reference: one noisy voxel cannot set it
            ref = arrival[order[min(n_voxels, len(order)) - 1]]
            early = top[order[: max(n_voxels, int((arrival <= ref + ARRIVAL_TOLERANCE_S).sum()))]]
            chosen = early[np.argsort(-peak[early], kind="stable")][:n_voxels]  # the least partial volume
        else:
            ttp = curves[top].argmax(axis=1) * dt
            early = top[np.argsort(ttp, kind="stable")][: max(n_voxels * 2, len(top) // 2)]
            width = curve_features(curves[early], dt)["width"]
            chosen = early[np.argsort(width, kind="stable")][:n_voxels]
        curve = curves[chosen].mean(axis=0, dtype=np.float64)
        voxels = np.stack(np.unravel_index(flat[chosen], self.shape), axis=1)
        return InputFunction(curve.astype(np.float32), voxels, peak_time(curve, dt),
                             float(arrival_times(curve[None], dt)[0]))


def select_aif(
    enhancement: np.ndarray,
    mask: np.ndarray,
    dt: float,
    *,
    n_voxels: int = 6,
    rank: str = "arrival",
    where: str = "AIF",
) -> InputFunction:
    """Pick arterial voxels: the earliest arrival among high, complete bolus passages.

    Candidates are the voxels of ``mask`` whose curve returns below half its peak by the last
    frame and whose peak is not on the first or last frame; of those, the 0.1 % with the
    highest peaks (at least ``4 * n_voxels``) have an arterial shape. With ``rank="arrival"``
    (default) they are ranked by :func:`arrival_times`: the ones arriving within
    :data:`ARRIVAL_TOLERANCE_S` of the ``n_voxels``-th earliest (so one noisy voxel cannot set
    the reference) are kept, and the ``n_voxels`` highest of them (the least partial volume)
    averaged. ``rank="peak_frame"``
    is the earlier rule (kept for comparison): the earlier half by the frame of the peak, then
    the narrowest. The analysis of a whole scan gathers the same candidates slab by slab
    (:class:`AifCandidates`).

    Args:
        enhancement: ``(X, Y, Z, T)`` baseline-subtracted enhancement.
        mask: ``(X, Y, Z)`` bool, where to look (brain, or a user's artery mask).
        dt: frame interval, s.
    """
    if rank not in ("arrival", "peak_frame"):
        raise DataError(where, f"unknown AIF ranking {rank!r} (arrival or peak_frame)")
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise DataError(where, "no voxels to choose an AIF from (empty mask)")
    found = AifCandidates(n_voxels, int(mask.sum()), mask.shape)
    found.add(enhancement[mask], np.flatnonzero(mask))
    return found.choose(dt, rank, where)


class VofCandidates:
    """The venous candidates of :func:`select_vof`, gathered slab by slab: each :meth:`add` keeps
    the ``n_voxels`` largest areas among its late-peaking bolus passages."""

    def __init__(self, aif: InputFunction, dt: float, n_voxels: int, shape: tuple[int, int, int]) -> None:
        self.aif, self.dt, self.n_voxels, self.shape = aif, dt, n_voxels, shape
        self.n_cand = 0
        self._flat: list[np.ndarray] = []
        self._area: list[np.ndarray] = []
        self._curves: list[np.ndarray] = []

    def add(self, curves: np.ndarray, flat: np.ndarray) -> None:
        """Curves ``(N, T)`` of baseline-subtracted enhancement and their flat voxel indices ``(N,)``."""
        if len(curves) == 0:
            return
        f = curve_features(curves, self.dt)
        passage = curves[:, -1] < 0.5 * f["peak"]
        cand = np.flatnonzero((f["ttp"] >= self.aif.peak_time + 2.0) & passage)
        self.n_cand += len(cand)
        top = cand[np.argsort(-f["area"][cand], kind="stable")][: self.n_voxels]
        self._flat.append(np.asarray(flat)[top])
        self._area.append(f["area"][top])
        self._curves.append(np.array(curves[top], np.float32))

    def choose(self, where: str = "VOF") -> InputFunction:
        """The VOF of the candidates seen (see :func:`select_vof`)."""
        if self.n_cand < self.n_voxels:
            raise DataError(where, "too few late-peaking voxels to choose a venous output function")
        flat = np.concatenate(self._flat)
        area = np.concatenate(self._area)
        chosen = np.lexsort((flat, -area))[: self.n_voxels]
        curve = np.concatenate(self._curves)[chosen].mean(axis=0, dtype=np.float64)
        voxels = np.stack(np.unravel_index(flat[chosen], self.shape), axis=1)
        return InputFunction(curve.astype(np.float32), voxels, float(curve.argmax() * self.dt))


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
    mask = np.asarray(mask, bool)
    found = VofCandidates(aif, dt, n_voxels, mask.shape)
    found.add(enhancement[mask], np.flatnonzero(mask))
    return found.choose(where)


def venous_scale(aif: np.ndarray, vof: np.ndarray) -> float:
    """Factor ∫VOF / ∫AIF that corrects a partial-volume-diluted AIF (never below 1)."""
    a = float(np.clip(aif, 0, None).sum())
    v = float(np.clip(vof, 0, None).sum())
    if a <= 0:
        raise DataError("AIF", "the AIF has no positive area")
    return max(1.0, v / a)
