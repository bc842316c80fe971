"""CTA features of a raw 4D CTP as case modalities (Wang, Song et al., ISLES 2018 winner).

From the raw scan ``ctp`` (X, Y, Z, T) in HU:

- ``cta_mip`` (X, Y, Z), HU: the temporal maximum-intensity projection over the bolus window,
  the paper's low-level feature F_l;
- ``cta_bolus`` (X, Y, Z, C_e), HU: the bolus window ``[Ts, Te]`` (see
  :func:`~strokesynth.perfusion.bolus.bolus_window`, K = 5) resampled uniformly to C_e = 6
  frames, the input I* of the feature extractor Φe.

:func:`with_cta_features` adds both to a case as lazy volumes on the case's grid: they are
computed on first use and never written into the data set. The features of the last
:data:`KEEP_SCANS` scans computed are kept in memory (an ISLES'24 scan's are 590 MB: 20 scans
kept would hold 12 GB); an older scan's are computed again from its CTP when read again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from strokesynth.data.case import Case
from strokesynth.data.volume import Volume
from strokesynth.errors import DataError
from strokesynth.perfusion.bolus import accumulated_curve, bolus_window, resample_frames, temporal_mip

#: the keys :func:`with_cta_features` adds
CTA_KEYS = ("cta_mip", "cta_bolus")

#: how many scans' features stay in memory at once (most recently computed first out last)
KEEP_SCANS = 2


@dataclass(frozen=True)
class CtaConfig:
    """Settings of the CTA features.

    Attributes:
        k: K of the bolus-window rule (consecutive rising / falling frames), 5 in the paper.
        frames: C_e, frames of the resampled window, 6 in the paper.
        tissue_hu: baseline HU range of the voxels whose summed intensity gives the curve q(t)
            (brain tissue; excludes air and bone, whose noise would swamp the bolus).
    """

    k: int = 5
    frames: int = 6
    tissue_hu: tuple[float, float] = (-15.0, 100.0)


@dataclass
class CtaFeatures:
    """The features of one scan: ``mip`` (X, Y, Z), ``window`` (X, Y, Z, C_e) in HU, the bolus
    window ``(ts, te)`` (frame indices, inclusive) and the curve q(t) ``(T,)`` it came from."""

    mip: np.ndarray
    window: np.ndarray
    ts: int
    te: int
    curve: np.ndarray


def cta_features(ctp: np.ndarray, cfg: CtaConfig | None = None, where: str = "CTP") -> CtaFeatures:
    """Bolus window, temporal MIP and resampled window of a raw scan ``(X, Y, Z, T)`` in HU.

    Raises:
        DataError: not 4D, non-finite voxels, no bolus (flat curve), or a window shorter than
            ``cfg.frames`` frames.
    """
    cfg = cfg or CtaConfig()
    data = np.asarray(ctp, dtype=np.float32)
    if data.ndim != 4:
        raise DataError(where, f"the CTA features need a 4D (x, y, z, t) CTP, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise DataError(where, "the 4D CTP holds NaN or Inf voxels")
    tissue = (data[..., 0] > cfg.tissue_hu[0]) & (data[..., 0] < cfg.tissue_hu[1])
    curve = accumulated_curve(data, tissue if tissue.any() else None)
    ts, te = bolus_window(curve, cfg.k, where)
    if te - ts + 1 < cfg.frames:
        raise DataError(where, f"the bolus window {ts}..{te} holds {te - ts + 1} frames, fewer than the "
                               f"{cfg.frames} the features resample to")
    return CtaFeatures(temporal_mip(data, ts, te), resample_frames(data, ts, te, cfg.frames), ts, te, curve)


class _Lazy:
    """Computes the features of one CTP volume on use; the last :data:`KEEP_SCANS` computed (over
    every scan) are kept, so reading ``cta_mip`` then ``cta_bolus`` of a case computes them once."""

    _kept: OrderedDict[int, CtaFeatures] = OrderedDict()

    def __init__(self, ctp: Volume, cfg: CtaConfig, where: str) -> None:
        self.ctp, self.cfg, self.where = ctp, cfg, where

    def get(self) -> CtaFeatures:
        kept = _Lazy._kept
        key = id(self)
        if key in kept:
            kept.move_to_end(key)
            return kept[key]
        while len(kept) >= KEEP_SCANS:
            kept.popitem(last=False)
        features = cta_features(self.ctp.array, self.cfg, self.where)
        kept[key] = features
        return features

    def __del__(self) -> None:
        kept = getattr(_Lazy, "_kept", None)  # absent at interpreter shutdown
        if kept is not None:
            kept.pop(id(self), None)


@dataclass
class _Source:
    """A :class:`~strokesynth.data.volume.VolumeSource` over one of the two features."""

    lazy: _Lazy
    key: str
    shape: tuple[int, ...]
    path: Path | None = None

    def read(self) -> np.ndarray:
        f = self.lazy.get()
        return f.mip if self.key == "cta_mip" else f.window

    def read_slab(self, z: slice | int) -> np.ndarray:
        return self.read()[:, :, z]


def with_cta_features(case: Case, cfg: CtaConfig | None = None) -> Case:
    """``case`` with ``cta_mip`` and ``cta_bolus`` added (lazy; see the module docstring).

    Raises:
        DataError: the case has no raw 4D CTP (``ctp``), naming the case.
    """
    cfg = cfg or CtaConfig()
    if "ctp" not in case:
        raise DataError(case.where or case.id, "the CTA features need the raw 4D CTP (modality 'ctp'), "
                                               "which this case does not have")
    ctp = case["ctp"]
    if ctp.ndim != 4:
        raise DataError(str(ctp.path or case.where or case.id), f"'ctp' must be 4D, got shape {ctp.shape}")
    lazy = _Lazy(ctp, cfg, str(ctp.path or case.where or case.id))
    x, y, z = ctp.spatial_shape
    mods = dict(case.modalities)
    mods["cta_mip"] = Volume.from_source(_Source(lazy, "cta_mip", (x, y, z)), ctp.affine)
    mods["cta_bolus"] = Volume.from_source(_Source(lazy, "cta_bolus", (x, y, z, cfg.frames)), ctp.affine)
    return Case(case.id, case.subject, mods, own_grid=case.own_grid, meta=dict(case.meta), where=case.where)
