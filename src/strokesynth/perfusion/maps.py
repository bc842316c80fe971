"""Perfusion maps from a raw 4D CTP Volume: masking, baseline, AIF, deconvolution, MIP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from scipy import ndimage

from strokesynth.config import bounded
from strokesynth.data.volume import Volume
from strokesynth.errors import DataError
from strokesynth.perfusion.aif import (
    AifCandidates,
    InputFunction,
    VofCandidates,
    arrival_times,
    peak_time,
    venous_scale,
)
from strokesynth.perfusion.bolus import bolus_window
from strokesynth.perfusion.deconvolution import PerfusionMaps, deconvolve
from strokesynth.perfusion.frames import SLAB_BYTES, CtpFrames, frame_timing
from strokesynth.perfusion.motion import register_frames


@dataclass
class PerfusionConfig:
    """Settings of :func:`analyze_ctp` (every field has a YAML key of the same name).

    Attributes:
        method: deconvolution method (``osvd``, ``csvd``, ``ssvd``, ``tikhonov``).
        kh, rho: haematocrit factor and tissue density (g/ml).
        threshold: regularisation (default per method), see :func:`deconvolve`.
        oi: oscillation-index target of oSVD.
        tmax_rule: ``onset`` (half-height of the residue's rise, unbiased by the regularisation
            filter for a step, early for a decaying residue under heavy truncation), ``peak`` (the
            residue's argmax, as vendor software reports it; on the phantom's noise-free curves
            1.4 s late for oSVD) or ``onset_corrected`` (the onset less the bias of the filter at
            the voxel's truncation and MTT), see :func:`deconvolve`.
        smooth_mm: in-plane Gaussian sigma applied to every frame before deconvolution, mm.
        tmax_median_mm: in-plane width (mm) of the median filter applied to the Tmax map within
            the brain before the physical limits (0: none); see :func:`median_in_plane`. A per-voxel
            onset read at 1.25 s frames from a noisy residue spreads about +-0.6 s whatever its
            centre; a 9 mm median halves the voxels flagged for a negative Tmax and keeps the
            Tmax > 6 s region's edges (docs/perfusion.md).
        bone_hu: baseline HU above which a voxel is bone.
        tissue_hu: (low, high) baseline HU range of brain tissue.
        aif_voxels: voxels averaged into the automatic AIF (and VOF).
        aif_rank: how arterial candidates are ranked: ``arrival`` (the half-height crossing of
            the rise, sub-frame; default) or ``peak_frame`` (the frame of the peak, the earlier
            rule, whose AIF can come from a branch filling up to a frame later than the carotid),
            see :func:`strokesynth.perfusion.aif.select_aif`.
        venous_scaling: rescale the AIF to the area of the venous output function.
        vof_after_motion: keep venous scaling when motion correction moved frames (or could not
            register one). Off by default: the VOF lies on the dural sinuses against the bone,
            where 0.1-0.3 mm of registration residual makes steps as large as the venous peak
            (docs/perfusion.md, "Head motion"), so such a scan's AIF is left unscaled and
            ``info["venous_scaling"]`` says why. Relative CBF, MTT and Tmax hardly depend on it.
        bolus_k: K of the bolus-window rule.
        frames: frames of the resampled bolus window (CTA features).
        motion_correction: rigidly register every frame to the first before anything else
            (:func:`strokesynth.perfusion.motion.register_frames`); ``info["motion"]`` reports
            the transforms and the frames that could not be registered.
        threads: threads of the registration.
        frame_interval_s: the frame interval (s) of a CTP whose JSON sidecar and NIfTI header
            (pixdim[4]) do not give it (``--frame-interval``); see
            :func:`~strokesynth.perfusion.frames.frame_timing`.
    """

    method: str = "osvd"
    kh: float = bounded(0.733, lo=0.0, hi=1.0, lo_open=True)
    rho: float = bounded(1.04, lo=0.0, hi=10.0, lo_open=True)
    threshold: float | None = bounded(None, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    oi: float = bounded(0.1, lo=0.0, lo_open=True)
    tmax_rule: str = "onset_corrected"
    smooth_mm: float = bounded(2.0, lo=0.0, hi=100.0)
    tmax_median_mm: float = bounded(9.0, lo=0.0, hi=100.0)
    bone_hu: float = 150.0
    tissue_hu: tuple[float, float] = (-15.0, 100.0)
    aif_voxels: int = bounded(6, lo=1, hi=100_000)
    aif_rank: Literal["arrival", "peak_frame"] = "arrival"
    venous_scaling: bool = True
    vof_after_motion: bool = False
    bolus_k: int = bounded(5, lo=1, hi=1000)
    frames: int = bounded(6, lo=1, hi=1000)
    motion_correction: bool = False
    threads: int = bounded(2, lo=1, hi=4096)
    frame_interval_s: float | None = bounded(None, lo=0.0, lo_open=True)


#: Frame intervals (s) accepted in a raw CTP: protocols sample every 0.5-3 s; outside this range
#: the time unit is wrong (ms read as s) rather than the protocol unusual.
FRAME_INTERVAL_S = (0.05, 60.0)

#: Skewness of the whole-brain enhancement curve below which the frames are taken to run backwards.
REVERSED_SKEW = -0.5


def enhancement_skew(curve: np.ndarray) -> float:
    """Skewness (in frames) of an enhancement curve ``(T,)`` above its 10th percentile.

    A first-pass bolus rises fast and washes out slowly, so it is skewed right (+0.7 to +1.1 on
    every phantom scan); the same frames in reverse order are skewed left by as much."""
    enh = np.clip(curve - np.percentile(curve, 10), 0.0, None)
    mass = enh.sum()
    if mass <= 0:
        return 0.0
    t = np.arange(curve.size, dtype=np.float64)
    mean = (t * enh).sum() / mass
    sd = np.sqrt(((t - mean) ** 2 * enh).sum() / mass)
    return float(((t - mean) ** 3 * enh).sum() / mass / sd**3) if sd > 0 else 0.0


def check_time_order(curve: np.ndarray, where: str) -> None:
    """Refuse a CTP whose whole-brain enhancement curve ``(T,)`` runs backwards (its frames in
    reverse time order: every Tmax would come out negative and be flagged).

    Raises:
        DataError: the curve is skewed left (:data:`REVERSED_SKEW`).
    """
    skew = enhancement_skew(np.asarray(curve, np.float64))
    if skew < REVERSED_SKEW:
        raise DataError(where, f"the bolus decays before it rises (enhancement skewness {skew:.2f}): the frames "
                               "look like they are in reverse time order; sort them by acquisition time")


#: Bit of each map in the ``invalid`` flags volume.
INVALID_BITS = {"cbf": 1, "cbv": 2, "mtt": 4, "tmax": 8}


def physical_limits(maps: dict[str, np.ndarray], tmax_resolution_s: float = 0.0
                    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Replace physically impossible perfusion values by the documented invalid value, 0.

    CBF, CBV and MTT cannot be negative, and Tmax (the delay of the residue peak after the AIF,
    which is chosen among the earliest arriving arterial curves) cannot either; noise and deconvolution
    ringing make all four negative in a few percent of brain voxels (and NaN where a curve is
    degenerate). Those voxels are set to 0, as clinical packages display them, and flagged.
    A Tmax less than ``tmax_resolution_s`` below 0 is within the estimator's resolution (the
    onset rule reads a delay of 0 as -0.5 to 0 s on noise-free curves): it is set to 0 unflagged.

    Args:
        maps: ``cbf``, ``cbv``, ``mtt``, ``tmax`` arrays of one shape.
        tmax_resolution_s: see above (``analyze_ctp`` passes one frame interval).

    Returns:
        The cleaned maps and a uint8 array of flags (bit :data:`INVALID_BITS` [key] set where
        that map was invalid).
    """
    flags = np.zeros(next(iter(maps.values())).shape, np.uint8)
    out = {}
    for key, values in maps.items():
        floor = -tmax_resolution_s if key == "tmax" else 0.0
        bad = ~np.isfinite(values) | (values < floor)
        flags[bad] |= INVALID_BITS[key]
        out[key] = np.where(bad, 0, np.maximum(values, 0)).astype(np.float32)
    return out, flags


def invalid_counts(flags: np.ndarray, mask: np.ndarray) -> dict[str, dict[str, float]]:
    """Per map: voxels of ``mask`` flagged invalid, and their percentage of the mask."""
    n = max(int(mask.sum()), 1)
    return {key: {"voxels": int(np.count_nonzero(flags[mask] & bit)),
                  "percent": round(100.0 * np.count_nonzero(flags[mask] & bit) / n, 3)}
            for key, bit in INVALID_BITS.items()}


@dataclass
class PerfusionResult:
    """Everything :func:`analyze_ctp` computed; Volumes share the input's affine.

    Attributes:
        maps: ``cbf``, ``cbv``, ``mtt``, ``tmax`` and ``mip`` Volumes (0 outside the brain).
        mask: brain mask Volume (label).
        aif: the arterial input function used (after any venous scaling).
        vof: the venous output function, if venous scaling was asked for.
        window: bolus window (Ts, Te) as frame indices.
        frames: ``(X, Y, Z, n)`` resampled bolus-window frames, HU.
        info: numbers for reports (bolus window, baseline frames, AIF peak, venous scale,
            ``invalid``: per map the brain voxels set to 0 by :func:`physical_limits`).
        invalid: uint8 flags Volume of those voxels (bits :data:`INVALID_BITS`).
    """

    maps: dict[str, Volume]
    mask: Volume
    aif: InputFunction
    vof: InputFunction | None
    window: tuple[int, int]
    frames: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    invalid: Volume | None = None


def brain_mask(baseline: np.ndarray, cfg: PerfusionConfig) -> np.ndarray:
    """Intracranial soft tissue from a baseline (non-contrast) image ``(X, Y, Z)`` in HU.

    Per slice: the inside of the skull (holes of the dilated bone mask) within the tissue HU
    range, eroded by one voxel; on slices where the skull does not close, the largest
    connected region in the tissue range instead.
    """
    low, high = cfg.tissue_hu
    tissue = (baseline > low) & (baseline < high)
    bone = baseline > cfg.bone_hu
    mask = np.zeros(baseline.shape, bool)
    for z in range(baseline.shape[2]):
        inside = ndimage.binary_fill_holes(ndimage.binary_dilation(bone[..., z], iterations=1))
        inside &= ~ndimage.binary_dilation(bone[..., z], iterations=2)
        m = inside & tissue[..., z]
        if m.sum() < 0.01 * m.size:
            lab, n = ndimage.label(ndimage.binary_opening(tissue[..., z], iterations=2))
            if n == 0:
                continue
            sizes = ndimage.sum_labels(np.ones_like(lab), lab, index=np.arange(1, n + 1))
            m = lab == (1 + int(np.argmax(sizes)))
        mask[..., z] = ndimage.binary_erosion(m, iterations=1)
    return mask


def _gaussian_matrix(n: int, sigma: float) -> torch.Tensor:
    """scipy's ``gaussian_filter1d`` (mode ``reflect``, truncate 4) along an axis of length
    ``n`` as an ``(n, n)`` matrix: row ``i`` holds the weights of output sample ``i``."""
    return torch.from_numpy(ndimage.gaussian_filter1d(np.eye(n), sigma, axis=0).astype(np.float32))


def brain_curves(raw: np.ndarray, mask: np.ndarray, sigma_xy: tuple[float, float] | None = None) -> np.ndarray:
    """The enhancement curves of the brain voxels ``(N, T)`` (``mask``'s C order), smoothed in plane
    within the brain when ``sigma_xy`` is given (see :func:`smooth_in_plane`).

    Args:
        raw: ``(X, Y, Z, T)`` float32 enhancement (baseline subtracted), HU.
        mask: ``(X, Y, Z)`` bool brain mask, not empty.
        sigma_xy: Gaussian sigma along x and y, voxels (None: no smoothing).
    """
    curves = raw[mask]
    return curves if sigma_xy is None else smooth_in_plane(curves, mask, sigma_xy)


#: points per side of the median's footprint at most (its points are spread over the window in mm)
MEDIAN_POINTS = 5


def median_footprint(window_mm: float, spacing_xy: tuple[float, float]) -> np.ndarray:
    """The in-plane footprint ``(fx, fy, 1)`` of a median ``window_mm`` wide: at most
    :data:`MEDIAN_POINTS` points per side, spaced by whole voxels so they span about the window
    (at 1.8 mm pixels a 9 mm window is the 5 x 5 neighbourhood; at 0.45 mm it is 5 x 5 points 5
    voxels apart, 25 values instead of 441: neighbouring voxels of a map smoothed at 2 mm carry
    the same noise)."""
    axes = []
    for sp in spacing_xy:
        step = max(1, round(window_mm / (MEDIAN_POINTS - 1) / sp))
        half = min(max(0, round(window_mm / 2 / (step * sp))), MEDIAN_POINTS // 2)
        line = np.zeros(2 * half * step + 1, bool)
        line[::step] = True
        axes.append(line)
    return (axes[0][:, None] & axes[1][None, :])[:, :, None]


def median_in_plane(values: np.ndarray, mask: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """A map's values ``(N,)`` at the voxels of ``mask`` ``(X, Y, Z)`` (its C order), median-filtered
    in plane with ``footprint`` (:func:`median_footprint`) within the mask, slice by slice.

    Outside the mask, and where a value is not finite, each position of the slice's bounding box
    takes the value of the nearest valid voxel of the slice (so skull and air do not pull the
    brain's edge; beyond the box the edge repeats); a value that was not finite stays so (the
    physical limits flag it). Each slice depends on nothing else, so slabs of any thickness give
    the same map.
    """
    out = np.array(values, np.float32, copy=True)
    grid = np.zeros(mask.shape, np.float32)
    grid[mask] = out
    valid = mask.copy()
    valid[mask] = np.isfinite(out)
    fp = footprint[:, :, 0]
    for z in range(mask.shape[2]):
        xs, ys = np.nonzero(valid[:, :, z])
        if len(xs) == 0:
            continue
        box = (slice(xs.min(), xs.max() + 1), slice(ys.min(), ys.max() + 1), z)
        plane, ok = grid[box], valid[box]
        idx = ndimage.distance_transform_edt(~ok, return_distances=False, return_indices=True)
        grid[box] = ndimage.median_filter(plane[idx[0], idx[1]], footprint=fp, mode="nearest")
    filtered = grid[mask]
    return np.where(np.isfinite(out), filtered, out).astype(np.float32)


def smooth_in_plane(curves: np.ndarray, mask: np.ndarray, sigma_xy: tuple[float, float]) -> np.ndarray:
    """Curves ``(N, T)`` of the voxels of ``mask`` ``(X, Y, Z)`` (its C order), smoothed in plane
    within the mask, normalised so that skull and air do not bleed in: ``G(c·m) / G(m)`` at the
    voxels of ``m``.

    Equal to ``scipy.ndimage.gaussian_filter`` with sigma ``(sx, sy, 0, 0)`` of the masked 4D array
    (to float32 rounding), computed as two matrix products on the mask's bounding box (grown by the
    kernel radius, so only zeros are cropped), 2-4x faster than the line filter.

    Args:
        curves: ``(N, T)`` float32, N = ``mask.sum()``.
        mask: ``(X, Y, Z)`` bool, not empty.
        sigma_xy: Gaussian sigma along x and y, voxels.
    """
    xs, ys = np.nonzero(mask.any(axis=2))
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    rx, ry = (int(4.0 * s + 0.5) for s in sigma_xy)  # scipy's kernel radius (truncate 4)
    x0, x1 = max(0, x0 - rx), min(mask.shape[0], x1 + rx)
    y0, y1 = max(0, y0 - ry), min(mask.shape[1], y1 + ry)
    m_box = mask[x0:x1, y0:y1]
    m = torch.from_numpy(m_box.astype(np.float32))
    nx, ny = m.shape[:2]
    gx, gy = _gaussian_matrix(nx, sigma_xy[0]), _gaussian_matrix(ny, sigma_xy[1])
    with torch.inference_mode():
        inside = torch.from_numpy(m_box)
        box = torch.zeros((*m_box.shape, curves.shape[1]), dtype=torch.float32)
        box[inside] = torch.from_numpy(np.ascontiguousarray(curves, np.float32))
        sm = torch.matmul(gy, (gx @ box.reshape(nx, -1)).reshape(nx, ny, -1)).reshape(box.shape)
        w = torch.matmul(gy, (gx @ m.reshape(nx, -1)).reshape(nx, ny, -1)).reshape(m.shape)
        return (sm[inside] / w[inside].clamp(min=1e-3)[:, None]).numpy()


def resampled_frames(frames: CtpFrames, start: int, end: int, n: int) -> np.ndarray:
    """:func:`~strokesynth.perfusion.bolus.resample_frames` of a whole scan, two frames at a time:
    ``(X, Y, Z, n)`` float32 HU."""
    if n < 1:
        raise DataError("resample_frames", f"need at least one frame, got {n}")
    out = np.empty((*frames.shape[:3], n), np.float32)
    for i, pos in enumerate(np.linspace(start, end, n)):
        lo = int(np.floor(pos))
        hi = min(lo + 1, frames.shape[-1] - 1)
        w = np.float32(pos - lo)
        out[..., i] = frames.frame(lo) * (1 - w) + frames.frame(hi) * w
    return out


def analyze_ctp(
    ctp: Volume,
    cfg: PerfusionConfig | None = None,
    *,
    aif: np.ndarray | None = None,
    aif_mask: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    slab_bytes: int = SLAB_BYTES,
) -> PerfusionResult:
    """CBF, CBV, MTT, Tmax and the temporal MIP of a 4D CTP Volume ``(X, Y, Z, T)`` in HU.

    The scan is kept once in its stored dtype and analysed in z-slabs of at most ``slab_bytes``
    of float32 (:mod:`strokesynth.perfusion.frames`): a 512 x 512 x 80 x 40 int16 CTP needs its
    1.7 GB plus a few hundred MB, not the 9 GB of whole-array float32 copies. Every step is per
    voxel or in plane, so the maps do not depend on the slab size (a test). With motion
    correction the registered scan is held in float32.

    Args:
        ctp: the raw scan; its frame timing comes from its sidecar, ``dt`` or
            ``cfg.frame_interval_s`` (:func:`~strokesynth.perfusion.frames.frame_timing`); uneven
            frames are resampled onto a uniform grid.
        cfg: settings (defaults: oSVD, kh 0.733, rho 1.04).
        aif: a given AIF ``(T,)`` in baseline-subtracted HU (skips selection).
        aif_mask: ``(X, Y, Z)`` bool, voxels to choose the AIF from (default: the brain mask).
        mask: ``(X, Y, Z)`` bool brain mask (default: computed from the baseline).
        slab_bytes: float32 bytes converted at a time.
    """
    cfg = cfg or PerfusionConfig()
    where = str(ctp.path or "CTP")
    if ctp.ndim != 4:
        raise DataError(where, f"expected a 4D (x, y, z, t) CTP, got shape {ctp.shape}")
    timing = frame_timing(ctp, cfg.frame_interval_s)
    dt = timing.dt
    if not FRAME_INTERVAL_S[0] <= dt <= FRAME_INTERVAL_S[1]:
        raise DataError(where, f"frame interval {dt:g} s is outside what CT perfusion protocols use "
                               f"({FRAME_INTERVAL_S[0]:g}-{FRAME_INTERVAL_S[1]:g} s): check pixdim[4] and its time unit")
    if ctp.shape[2] < 2:
        raise DataError(where, f"only {ctp.shape[2]} slice; a CTP slab needs at least 2 (shape {ctp.shape})")
    frames = CtpFrames(ctp, timing)
    n_t = frames.shape[-1]
    shape3 = frames.shape[:3]
    if n_t < 2 * cfg.bolus_k + 2:
        raise DataError(where, f"only {n_t} frames; need at least {2 * cfg.bolus_k + 2}")
    spacing = ctp.spacing
    motion = None
    moved: list[int] = []
    if cfg.motion_correction:
        data, report = register_frames(ctp.array, tuple(spacing[:3]), threads=cfg.threads)
        frames = CtpFrames(ctp, timing, array=data)
        motion = report.as_dict()
        moved = sorted(report.resampled + report.failed)
    first = frames.frame(0)
    rough = (first > cfg.tissue_hu[0]) & (first < cfg.tissue_hu[1])
    del first
    accumulated = frames.frame_sums(rough)
    check_time_order(accumulated, where)
    ts, te = bolus_window(accumulated, cfg.bolus_k, where)
    n_base = max(1, ts)
    baseline = np.zeros(shape3, np.float32)
    for t in range(n_base):
        baseline += frames.frame(t)
    baseline /= np.float32(n_base)
    if mask is None:
        mask = brain_mask(baseline, cfg)
    mask = np.asarray(mask, bool)
    if mask.shape != shape3:
        raise DataError(where, f"mask shape {mask.shape} does not match the scan {shape3}")
    if not mask.any():
        raise DataError(where, "the brain mask is empty (is this a head CT in HU?)")

    def slabs(region: np.ndarray):
        """``(z0, z1, sub, curves)`` per slab: the HU curves ``(N, T)`` of ``region``'s voxels."""
        for z0, z1 in frames.z_chunks(region.sum(axis=(0, 1)), slab_bytes):
            sub = region[:, :, z0:z1]
            if sub.any():
                yield z0, z1, sub, frames.curves(sub, z0)

    def gather(found: AifCandidates | VofCandidates, region: np.ndarray) -> None:
        """Feed the enhancement curves of ``region``'s voxels to ``found``, slab by slab."""
        for z0, z1, sub, curves in slabs(region):
            curves -= baseline[:, :, z0:z1][sub][:, None]
            xs, ys, zs = np.nonzero(sub)
            found.add(curves, np.ravel_multi_index((xs, ys, zs + z0), shape3))

    info: dict[str, Any] = {"bolus_window": [ts, te], "baseline_frames": n_base,
                            "frame_timing": timing.describe()}
    if motion is not None:
        info["motion"] = motion
    vof = None
    if aif is not None:
        aif_curve = np.asarray(aif, dtype=np.float32).ravel()
        if aif_curve.shape != (n_t,):
            raise DataError(where, f"the given AIF has {aif_curve.size} frames, the scan {n_t}")
        chosen = InputFunction(aif_curve, np.zeros((0, 3), int), peak_time(aif_curve, dt),
                               float(arrival_times(aif_curve[None], dt)[0]))
    else:
        search = mask if aif_mask is None else np.asarray(aif_mask, bool)
        if search.shape != mask.shape:
            raise DataError(where, f"AIF mask shape {search.shape} does not match the scan {mask.shape}")
        if cfg.aif_rank not in ("arrival", "peak_frame"):
            raise DataError(where, f"unknown AIF ranking {cfg.aif_rank!r} (arrival or peak_frame)")
        if not search.any():
            raise DataError(where, "no voxels to choose an AIF from (empty mask)")
        # select from unsmoothed curves: smoothing dilutes the small arteries
        arterial = AifCandidates(cfg.aif_voxels, int(search.sum()), shape3)
        gather(arterial, search)
        chosen = arterial.choose(dt, cfg.aif_rank, where)
        if cfg.venous_scaling and moved and not cfg.vof_after_motion:
            info["venous_scaling"] = (f"skipped: motion correction moved or could not register {len(moved)} "
                                      "frame(s); a VOF on the sinuses is not readable after that")
        elif cfg.venous_scaling:
            # the dural sinuses lie at the edge of the brain mask, against the inner table
            near = ndimage.binary_dilation(mask, structure=np.ones((3, 3, 1), bool), iterations=3)
            near &= (baseline > cfg.tissue_hu[0]) & (baseline < cfg.bone_hu)
            venous = VofCandidates(chosen, dt, cfg.aif_voxels, shape3)
            gather(venous, near)
            vof = venous.choose()
            factor = venous_scale(chosen.curve, vof.curve)
            chosen = InputFunction(chosen.curve * factor, chosen.voxels, chosen.peak_time, chosen.arrival_time)
            info["venous_scale"] = factor
    info["aif_peak_hu"] = float(chosen.curve.max())
    info["aif_peak_time_s"] = chosen.peak_time
    info["aif"] = chosen.describe()

    sigma = (cfg.smooth_mm / spacing[0], cfg.smooth_mm / spacing[1]) if cfg.smooth_mm > 0 else None
    footprint = median_footprint(cfg.tmax_median_mm, spacing[:2]) if cfg.tmax_median_mm > 0 else None
    out_maps = {key: np.zeros(shape3, np.float32) for key in ("cbf", "cbv", "mtt", "tmax")}
    invalid = np.zeros(shape3, np.uint8)
    mip = np.zeros(shape3, np.float32)
    for z0, z1, sub, curves in slabs(mask):
        mip[:, :, z0:z1][sub] = curves[:, ts:te + 1].max(axis=1)
        curves -= baseline[:, :, z0:z1][sub][:, None]  # enhancement, HU
        if sigma is not None:
            curves = smooth_in_plane(curves, sub, sigma)
        maps: PerfusionMaps = deconvolve(curves, chosen.curve, dt, cfg.method, cfg.kh, cfg.rho,
                                         threshold=cfg.threshold, oi=cfg.oi, tmax_rule=cfg.tmax_rule)
        values = maps.as_dict()
        if footprint is not None:
            values["tmax"] = median_in_plane(values["tmax"], sub, footprint)
        clean, flags = physical_limits(values, tmax_resolution_s=dt)
        for key, values in clean.items():
            out_maps[key][:, :, z0:z1][sub] = values
        invalid[:, :, z0:z1][sub] = flags
    resampled = resampled_frames(frames, ts, te, cfg.frames)
    info["invalid"] = invalid_counts(invalid, mask)
    out: dict[str, Volume] = {key: Volume(values, ctp.affine) for key, values in out_maps.items()}
    out["mip"] = Volume(mip, ctp.affine)
    return PerfusionResult(out, Volume(mask.astype(np.uint8), ctp.affine, kind="label"), chosen, vof,
                           (ts, te), resampled, info, Volume(invalid, ctp.affine, kind="label"))
