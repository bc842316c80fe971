"""Perfusion maps for a case that brings only the raw 4D CTP, and the hypoperfusion that follows.

A new patient arrives with a non-contrast CT and the raw 4D CTP; the segmenters take CBF, CBV,
MTT and Tmax. :func:`with_perfusion_maps` computes whichever of the four a case lacks from its
``ctp`` with :func:`~strokesynth.perfusion.maps.analyze_ctp` (oSVD by default, the method the
phantom's maps are made with, so a model trained on the phantom sees maps of the same kind).

A model trained on a vendor's maps (ISLES 2018's come from a commercial package) should be
given that vendor's maps: maps of another method differ in scale (CBF from SVD methods is
commonly below the true flow, by a method-dependent factor) and the network's input
normalisation does not remove all of it.

:func:`hypoperfusion` is the clinical Tmax > 6 s region, and :func:`mismatch` the core /
hypoperfusion volumes the DEFUSE 3 criteria read (mismatch volume and ratio).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from strokesynth.data.case import Case
from strokesynth.data.volume import Volume
from strokesynth.errors import DataError
from strokesynth.perfusion.aif import InputFunction
from strokesynth.perfusion.frames import frame_timing, uniform_times
from strokesynth.perfusion.maps import PerfusionConfig, analyze_ctp

#: the perfusion maps a CTP segmenter takes, in the order analyze_ctp names them
MAP_KEYS = ("cbf", "cbv", "mtt", "tmax")

#: Tmax threshold of the clinical hypoperfusion (critically hypoperfused tissue), s
TMAX_HYPOPERFUSION_S = 6.0


@dataclass
class ComputedMaps:
    """What :func:`with_perfusion_maps` computed for one case (nothing when the case had its maps).

    Attributes:
        keys: the maps computed from the raw CTP (empty: all were given).
        method: deconvolution method used.
        seconds: wall-clock time of the analysis, s.
        brain: ``(X, Y, Z)`` brain mask of the analysis (``None`` when nothing was computed).
        info: bolus window, AIF peak, venous scale, invalid-voxel counts (JSON-ready).
        aif, vof: the arterial input function used and the venous output that scaled it.
        dt: frame interval of the scan, s.
    """

    keys: list[str] = field(default_factory=list)
    method: str = ""
    seconds: float = 0.0
    brain: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    aif: InputFunction | None = None
    vof: InputFunction | None = None
    dt: float = 0.0


def missing_maps(case: Case, needed: list[str] | tuple[str, ...] = MAP_KEYS) -> list[str]:
    """The perfusion maps among ``needed`` that ``case`` does not hold."""
    return [k for k in needed if k in MAP_KEYS and k not in case]


def check_raw_ctp(case: Case, needed: list[str] | tuple[str, ...] = MAP_KEYS,
                  cfg: PerfusionConfig | None = None) -> list[str]:
    """The maps :func:`with_perfusion_maps` would compute for ``case``, after the checks that need
    no analysis (header only: cheap enough to run over a whole batch before anything is written).

    Raises:
        DataError: one line naming the case or the CTP file: a map is missing and there is no raw
            CTP, the CTP is not 4D, no sidecar, header or setting gives its frame interval
            (:func:`~strokesynth.perfusion.frames.frame_timing`), or it has fewer frames than the
            bolus-window rule needs (2K + 2).
    """
    todo = missing_maps(case, needed)
    if not todo:
        return todo
    cfg = cfg or PerfusionConfig()
    where = case.where or case.id
    if "ctp" not in case:
        raise DataError(where, f"missing modality {', '.join(todo)}, and no raw 4D CTP ('ctp') to compute "
                               f"{'it' if len(todo) == 1 else 'them'} from")
    ctp = case["ctp"]
    file = str(ctp.path or where)
    if ctp.ndim != 4:
        raise DataError(file, f"the raw CTP must be 4D (x, y, z, t), got shape {ctp.shape}")
    timing = frame_timing(ctp, cfg.frame_interval_s)
    n_frames = ctp.shape[3] if timing.times is None else len(uniform_times(timing.times, timing.dt))
    need = 2 * cfg.bolus_k + 2
    if n_frames < need:
        raise DataError(file, f"only {n_frames} frames; the bolus-window rule (K = {cfg.bolus_k}) needs at least {need}")
    return todo


def with_perfusion_maps(case: Case, needed: list[str] | tuple[str, ...] = MAP_KEYS,
                        cfg: PerfusionConfig | None = None) -> tuple[Case, ComputedMaps]:
    """``case`` with the maps of ``needed`` it lacks computed from its raw 4D CTP (``ctp``).

    All four maps come from one analysis; only the missing ones are added (a map the case brings
    is never replaced). The new maps are on the CTP's grid, which a case shares with its CT.

    Raises:
        DataError: one line naming the case or the CTP file: see :func:`check_raw_ctp`, and an
            analysis that finds no bolus or no brain.
    """
    cfg = cfg or PerfusionConfig()
    todo = check_raw_ctp(case, needed, cfg)
    if not todo:
        return case, ComputedMaps()
    ctp = case["ctp"]
    t0 = time.perf_counter()
    result = analyze_ctp(ctp, cfg)
    seconds = time.perf_counter() - t0
    mods = dict(case.modalities)
    for key in todo:
        mods[key] = Volume(result.maps[key].array, ctp.affine)
    out = Case(case.id, case.subject, mods, own_grid=case.own_grid, meta=dict(case.meta), where=case.where)
    info = {"bolus_window": list(result.window), "aif_peak_hu": round(float(result.info["aif_peak_hu"]), 2),
            "aif_peak_time_s": round(float(result.info["aif_peak_time_s"]), 3), "aif": result.info["aif"],
            "venous_scale": result.info.get("venous_scale"), "invalid": result.info["invalid"],
            "dt_s": result.info["frame_timing"]["dt_s"], "frames": int(ctp.shape[3]),
            "frame_timing": result.info["frame_timing"]}
    if "venous_scaling" in result.info:  # why it was skipped (frames moved by motion correction)
        info["venous_scaling"] = result.info["venous_scaling"]
    return out, ComputedMaps(todo, cfg.method, seconds, result.mask.array > 0, info, result.aif, result.vof,
                             float(result.info["frame_timing"]["dt_s"]))


def hypoperfusion(tmax: np.ndarray, threshold_s: float = TMAX_HYPOPERFUSION_S) -> np.ndarray:
    """``(X, Y, Z)`` bool: Tmax above ``threshold_s`` seconds (0 outside the brain in every map we
    compute or read, so no brain mask is needed)."""
    return np.asarray(tmax) > threshold_s


def mismatch(core_ml: float, hypoperfusion_ml: float) -> dict[str, float | None]:
    """Mismatch volume (hypoperfusion minus core, not below 0, ml) and ratio (hypoperfusion / core;
    ``None`` when the core is empty)."""
    return {"mismatch_ml": round(max(hypoperfusion_ml - core_ml, 0.0), 3),
            "mismatch_ratio": round(hypoperfusion_ml / core_ml, 3) if core_ml > 0 else None}


__all__ = ["MAP_KEYS", "TMAX_HYPOPERFUSION_S", "ComputedMaps", "check_raw_ctp", "hypoperfusion", "mismatch",
           "missing_maps", "with_perfusion_maps"]
