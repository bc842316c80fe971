"""The frames of a raw 4D CTP, served in z-slabs: how the analysis streams a 1-3 GB scan.

A CTP of 512 x 512 x 80 voxels and 40 frames is 1.7 GB as the int16 it is stored in, and 3.4 GB
as float32; one float32 copy of it and one of its enhancement already fill 6.7 GB. The analysis
therefore keeps the scan once, in its stored dtype (:meth:`Volume.stored`), and converts a few
the curves of the brain's voxels, a few slices at a time, to float32 HU (:meth:`CtpFrames.curves`),
and whole frames one at a time (:meth:`CtpFrames.frame`): every step of the analysis (the
accumulated curve, the baseline, the AIF and VOF candidates, the in-plane smoothing and the
deconvolution) is per voxel, per frame or in plane, so slabs give the same maps as the whole array.

Frame timing, in this order (:func:`frame_timing`): the volume's JSON sidecar (``FrameTimesStart``,
the acquisition time of every frame in seconds as BIDS writes it, or ``FrameTimesStart`` with
``FrameTimesUnit: "ms"``; else a uniform ``FrameInterval`` / ``RepetitionTime`` in seconds), then
the NIfTI header's ``pixdim[4]`` with its time unit, then an interval the user gives. Frames taken
at uneven times (e.g. every 1 s during the bolus, then every 3 s) are resampled by linear
interpolation in time onto a uniform grid at the *shortest* interval of the acquisition, from the
first to the last frame time, so the bolus keeps its sampling; SVD deconvolution assumes uniform
sampling. The analysis facts say what was done (``info["frame_timing"]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from strokesynth.data.volume import Volume
from strokesynth.errors import DataError

#: float32 bytes of the curves of one slab of the analysis (its smoothing and deconvolution need a few times that)
SLAB_BYTES = 64 * 2**20

#: Frame intervals that differ by less than this fraction of their median are taken as uniform.
UNIFORM_TOLERANCE = 0.02


@dataclass
class FrameTiming:
    """When the frames of a CTP were taken.

    Attributes:
        dt: the uniform interval the analysis uses, s.
        source: where it came from (``sidecar FrameTimesStart``, ``pixdim[4]``, ...).
        times: acquisition time of every stored frame ``(T,)``, s, when they are uneven (else None).
    """

    dt: float
    source: str
    times: np.ndarray | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts for the analysis record."""
        out: dict[str, Any] = {"dt_s": round(self.dt, 4), "source": self.source}
        if self.times is not None:
            steps = np.diff(self.times)
            out.update({"uneven": True, "stored_frames": int(len(self.times)),
                        "stored_interval_s": [round(float(steps.min()), 4), round(float(steps.max()), 4)],
                        "resampled_frames": int(uniform_times(self.times, self.dt).size),
                        "resampling": "linear in time onto a uniform grid at the shortest interval"})
        return out


def _seconds(values: Any, unit: str, where: str, key: str) -> np.ndarray:
    try:
        out = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise DataError(where, f"sidecar {key} is not a list of numbers") from None
    if not np.all(np.isfinite(out)):
        raise DataError(where, f"sidecar {key} holds NaN/Inf")
    scale = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "msec": 1e-3}.get(str(unit).lower())
    if scale is None:
        raise DataError(where, f"sidecar time unit {unit!r} is not s or ms")
    return out * scale


def frame_timing(ctp: Volume, fallback_dt: float | None = None) -> FrameTiming:
    """The frame timing of a 4D CTP (see the module docstring for the order of the sources).

    Raises:
        DataError: no source gives it, or the sidecar's times are not increasing or do not match
            the number of frames.
    """
    where = str(ctp.path or "CTP")
    sidecar = ctp.meta.get("sidecar") or {}
    n_t = ctp.shape[-1] if ctp.ndim == 4 else 0
    unit = sidecar.get("FrameTimesUnit", "s")
    if "FrameTimesStart" in sidecar:
        times = _seconds(sidecar["FrameTimesStart"], unit, where, "FrameTimesStart")
        if len(times) != n_t:
            raise DataError(where, f"sidecar FrameTimesStart has {len(times)} times, the CTP {n_t} frames")
        steps = np.diff(times)
        if n_t < 2 or np.any(steps <= 0):
            raise DataError(where, "sidecar FrameTimesStart is not strictly increasing")
        median = float(np.median(steps))
        if float(np.abs(steps - median).max()) <= UNIFORM_TOLERANCE * median:
            return FrameTiming(float((times[-1] - times[0]) / (n_t - 1)), "sidecar FrameTimesStart (uniform)")
        return FrameTiming(float(steps.min()), "sidecar FrameTimesStart (uneven)", times)
    for key in ("FrameInterval", "RepetitionTime"):
        if key in sidecar:
            value = _seconds([sidecar[key]], unit, where, key)[0]
            if not value > 0:
                raise DataError(where, f"sidecar {key} is {value:g}; the frame interval must be positive")
            return FrameTiming(float(value), f"sidecar {key}")
    if ctp.dt is not None:
        return FrameTiming(float(ctp.dt), "pixdim[4]")
    if fallback_dt is not None:
        return FrameTiming(float(fallback_dt), "given (--frame-interval)")
    raise DataError(where, "the frame interval of the 4D CTP is unknown: pixdim[4] is 0 and no JSON sidecar gives "
                           "FrameTimesStart or FrameInterval (give --frame-interval SECONDS)")


def uniform_times(times: np.ndarray, dt: float) -> np.ndarray:
    """The uniform grid from the first to the last of ``times`` at ``dt`` (s)."""
    n = int(np.floor((times[-1] - times[0]) / dt + 1e-6)) + 1
    return times[0] + dt * np.arange(n)


def interpolation_matrix(times: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``(len(grid), len(times))`` float32 weights of linear interpolation in time (rows sum to 1)."""
    hi = np.clip(np.searchsorted(times, grid, side="right"), 1, len(times) - 1)
    lo = hi - 1
    w = np.clip((grid - times[lo]) / (times[hi] - times[lo]), 0.0, 1.0)
    out = np.zeros((len(grid), len(times)), np.float64)
    out[np.arange(len(grid)), lo] += 1.0 - w
    out[np.arange(len(grid)), hi] += w
    return out.astype(np.float32)


class CtpFrames:
    """A 4D CTP kept once in its stored dtype, read as float32 HU a voxel's curve or a frame at a time.

    The analysis needs the curves of the brain's voxels (AIF, VOF, deconvolution) and a few whole
    frames (baseline, accumulated curve, resampled bolus frames). Both are gathered straight from
    the stored array: a NIfTI file is stored frame after frame (Fortran order), where one frame is
    contiguous and a voxel's curve is one row of the ``(voxels, T)`` view, so neither needs a
    float32 copy, or a transposed copy, of the whole scan.

    Args:
        ctp: the scan (lazy or in memory).
        timing: its frame timing; uneven frames are resampled onto a uniform grid.
        array: use this float32 ``(X, Y, Z, T)`` array instead of reading ``ctp`` (e.g. after
            motion correction).
    """

    def __init__(self, ctp: Volume, timing: FrameTiming, array: np.ndarray | None = None) -> None:
        if array is not None:
            raw, self._slope, self._inter = array, 1.0, 0.0
        else:
            raw, self._slope, self._inter = ctp.stored()
        if not (raw.flags.f_contiguous or raw.flags.c_contiguous):
            raw = np.asfortranarray(raw)
        self._raw = raw
        self._fortran = bool(raw.flags.f_contiguous) and not raw.flags.c_contiguous
        n_stored = raw.shape[-1]
        self._rows = raw.reshape(-1, n_stored, order="F" if self._fortran else "C")  # a view: (voxels, T)
        self.timing = timing
        self.dt = timing.dt
        self._weights: np.ndarray | None = None
        n_t = n_stored
        if timing.times is not None:
            self._weights = interpolation_matrix(timing.times, uniform_times(timing.times, timing.dt))
            n_t = self._weights.shape[0]
        self.shape: tuple[int, int, int, int] = (*raw.shape[:3], n_t)  # type: ignore[assignment]

    @property
    def stored_bytes(self) -> int:
        """Bytes of the scan as kept (its stored dtype)."""
        return int(self._raw.nbytes)

    def _hu(self, values: np.ndarray) -> np.ndarray:
        out = values.astype(np.float32)
        if self._slope != 1.0:
            out *= np.float32(self._slope)
        if self._inter != 0.0:
            out += np.float32(self._inter)
        return out

    def curves(self, region: np.ndarray, z0: int = 0) -> np.ndarray:
        """Float32 HU curves ``(N, T)`` of the voxels of ``region`` ``(X, Y, z)``, a mask of slices
        ``z0:z0+z``, in C order of the region (``region.nonzero()``)."""
        xs, ys, zs = np.nonzero(region)
        x, y, z, _ = self.shape
        flat = xs + x * (ys + y * (zs + z0)) if self._fortran else (xs * y + ys) * z + zs + z0
        out = self._hu(self._rows[flat])
        if self._weights is not None:
            out = out @ self._weights.T
        return np.ascontiguousarray(out, dtype=np.float32)

    def frame(self, t: int) -> np.ndarray:
        """Float32 HU of (uniform) frame ``t``: ``(X, Y, Z)``."""
        if self._weights is None:
            return self._hu(self._raw[..., t])
        row = self._weights[t]
        out = np.zeros(self.shape[:3], np.float32)
        for i in np.flatnonzero(row):
            out += row[i] * self._raw[..., i].astype(np.float32)
        return self._hu(out) if (self._slope, self._inter) != (1.0, 0.0) else out

    def frame_sums(self, mask: np.ndarray) -> np.ndarray:
        """Sum of every (uniform) frame over ``mask`` ``(X, Y, Z)``: ``(T,)`` HU, float64."""
        n = int(mask.sum())
        stored = np.array([float(self._raw[..., i][mask].sum(dtype=np.float64))
                           for i in range(self._raw.shape[-1])])
        if self._weights is not None:
            stored = self._weights.astype(np.float64) @ stored
        return stored * self._slope + n * self._inter

    def z_chunks(self, n_voxels: np.ndarray, budget_bytes: int = SLAB_BYTES) -> list[tuple[int, int]]:
        """``(z0, z1)`` slabs whose float32 curves (``n_voxels`` per slice ``(Z,)``) fit ``budget_bytes``,
        at least one slice each."""
        per_curve = 4 * self.shape[-1]
        out, z0, used = [], 0, 0
        for z, n in enumerate(np.asarray(n_voxels)):
            need = int(n) * per_curve
            if z > z0 and used + need > budget_bytes:
                out.append((z0, z))
                z0, used = z, 0
            used += need
        out.append((z0, len(n_voxels)))
        return out
