"""Accuracy of the perfusion module on known curves: the phantom's forward model and OSIPI's DRO.

Used by the tests, the demo report and ``docs/perfusion.md``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from strokesynth.errors import DataError
from strokesynth.metrics.baselines import perfusion_brain, threshold_core
from strokesynth.metrics.segmentation import dice
from strokesynth.perfusion.deconvolution import METHODS, deconvolve
from strokesynth.phantom.kinetics import Bolus, ResponseTable, tissue_enhancement

#: (name, CBF ml/100 g/min, CBV ml/100 g): grey and white matter, penumbra, core
TISSUES = (("gm", 55.0, 4.0), ("wm", 22.0, 2.0), ("penumbra", 27.0, 4.4), ("core", 8.0, 1.5))


@dataclass
class CurveSet:
    """Noise-free tissue curves with their truth, on one acquisition timing."""

    curves: np.ndarray  #: (N, T) HU
    aif: np.ndarray  #: (T,) HU
    dt: float
    cbf: np.ndarray
    cbv: np.ndarray
    delay: np.ndarray
    tissue: np.ndarray  #: (N,) index into TISSUES


DELAYS = np.arange(0.0, 4.01, 0.5)  #: s, default delays of :func:`phantom_curves`


def phantom_curves(delays: np.ndarray = DELAYS, frames: int = 48, dt: float = 1.25,
                   kh: float = 0.733, rho: float = 1.04) -> CurveSet:
    """Curves of every tissue of :data:`TISSUES` at every delay (s), from the phantom's model."""
    bolus = Bolus(t0=10.0, alpha=3.0, beta=1.5, peak=300.0, recirculation=0.12, recirculation_delay=9.0)
    times = np.arange(frames) * dt
    table = ResponseTable(bolus, times[-1] + float(np.max(delays)) + 5)
    cbf = np.array([c for _, c, _ in TISSUES for _ in delays])
    cbv = np.array([v for _, _, v in TISSUES for _ in delays])
    delay = np.tile(np.asarray(delays, float), len(TISSUES))
    curves = tissue_enhancement(table, times, cbf, cbv, delay, kh, rho)
    return CurveSet(curves, bolus(times).astype(np.float32), dt, cbf, cbv, delay,
                    np.repeat(np.arange(len(TISSUES)), len(delays)))


def accuracy_table(noise_hu: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0), repeats: int = 100, seed: int = 0,
                   methods: tuple[str, ...] = METHODS) -> list[dict[str, Any]]:
    """Errors of each method on :func:`phantom_curves` as white noise (SD in HU per frame) grows.

    Per method and noise level: median relative error of CBF, CBV and MTT (signed: bias; and
    absolute), Tmax bias and mean absolute error (s) by the default onset rule, the Tmax bias
    by the peak rule (the residue's argmax), and the delay sensitivity: the largest
    spread ``max / min - 1`` of a tissue's mean CBF over the delays 0-4 s.
    """
    base = phantom_curves()
    rng = np.random.default_rng(seed)
    rows = []
    for sd in noise_hu:
        reps = 1 if sd == 0 else repeats
        curves = np.repeat(base.curves, reps, axis=0)
        if sd > 0:
            curves = curves + rng.normal(0.0, sd, curves.shape).astype(np.float32)
        truth = {k: np.repeat(getattr(base, k), reps) for k in ("cbf", "cbv", "delay")}
        mtt_true = 60 * truth["cbv"] / truth["cbf"]
        for method in methods:
            m = deconvolve(curves, base.aif, base.dt, method)
            peak = deconvolve(curves, base.aif, base.dt, method, tmax_rule="peak").tmax
            rel = {"cbf": m.cbf / truth["cbf"] - 1, "cbv": m.cbv / truth["cbv"] - 1, "mtt": m.mtt / mtt_true - 1}
            mean_cbf = (m.cbf / truth["cbf"]).reshape(len(TISSUES), -1, reps).mean(axis=2)
            rows.append({
                "method": method,
                "noise_hu": sd,
                **{f"{k}_bias": round(float(np.median(v)), 3) for k, v in rel.items()},
                **{f"{k}_abs_err": round(float(np.median(np.abs(v))), 3) for k, v in rel.items()},
                "tmax_bias_s": round(float(np.median(m.tmax - truth["delay"])), 2),
                "tmax_mae_s": round(float(np.mean(np.abs(m.tmax - truth["delay"]))), 2),
                "tmax_peak_bias_s": round(float(np.median(peak - truth["delay"])), 2),
                "delay_sensitivity": round(float(np.max(mean_cbf.max(axis=1) / mean_cbf.min(axis=1) - 1)), 3),
            })
    return rows


def read_osipi_dro(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Curves of OSIPI's DSC digital reference object CSV (label, C_tis, C_aif, cbv, cbf, tr)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return [{"label": r["label"], "tissue": np.array(r["C_tis"].split(), float),
                 "aif": np.array(r["C_aif"].split(), float), "cbv": float(r["cbv"]), "cbf": float(r["cbf"]),
                 "dt": float(r["tr"])} for r in rows]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(path, f"not an OSIPI DSC DRO table ({exc})") from None


def osipi_accuracy(path: str | os.PathLike, methods: tuple[str, ...] = METHODS) -> list[dict[str, Any]]:
    """Per method and curve: estimates with ``kh = rho = 1`` and OSIPI's pass rule
    (CBF within 10 % + 15 ml/100 ml/min, CBV within 10 % + 1 ml/100 ml)."""
    out = []
    for method in methods:
        for c in read_osipi_dro(path):
            m = deconvolve(c["tissue"], c["aif"], c["dt"], method, kh=1.0, rho=1.0)
            cbf, cbv = float(m.cbf), float(m.cbv)
            out.append({
                "method": method, "label": c["label"], "cbf_true": c["cbf"], "cbf": round(cbf, 2),
                "cbv_true": c["cbv"], "cbv": round(cbv, 3),
                "cbf_ok": abs(cbf - c["cbf"]) <= 0.1 * c["cbf"] + 15, "cbv_ok": abs(cbv - c["cbv"]) <= 0.1 * c["cbv"] + 1,
            })
    return out


def summarize_osipi(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method: curves passing, and the median relative CBF error."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        sub = [r for r in rows if r["method"] == method]
        err = [abs(r["cbf"] - r["cbf_true"]) / r["cbf_true"] for r in sub]
        out.append({"method": method, "curves": len(sub), "cbf_pass": sum(r["cbf_ok"] for r in sub),
                    "cbv_pass": sum(r["cbv_ok"] for r in sub), "median_rel_cbf_err": round(float(np.median(err)), 3)})
    return out


def _dice(a: np.ndarray, b: np.ndarray) -> float | None:
    """Dice rounded for the report; None (shown as '–') when neither mask has a voxel."""
    return None if not (a.any() or b.any()) else round(dice(a, b), 3)


def maps_vs_truth(case_maps: dict[str, np.ndarray], truth: dict[str, np.ndarray], core_threshold: float = 0.3,
                  tmax_threshold: float = 6.0, aif_voxels: np.ndarray | None = None) -> dict[str, Any]:
    """Compare computed CBF/CBV/Tmax of one phantom scan with its ground truth.

    Args:
        case_maps: ``cbf``, ``cbv``, ``tmax`` arrays computed from the scan.
        truth: ``cbf``, ``cbv``, ``tmax``, ``core``, ``penumbra``, ``anatomy`` arrays (and
            ``artery_delay`` for the AIF's lateness).
        aif_voxels: ``(n, 3)`` indices of the voxels the analysis took its AIF from.

    Returns:
        Median ratios in normal grey and white matter, the median Tmax error (s) and absolute
        error there, how late the chosen AIF voxels fill after the slab's earliest artery (s,
        ``aif_late_s``; None when a chosen voxel holds no artery), the same Tmax errors against the
        truth counted from that earliest artery (``tmax_err_slab_s``, ``tmax_abs_err_slab_s``: a
        slab without the internal carotid, delay 0, holds no artery whose curve an analysis could
        read every delay from, so against the carotid every analysis reads Tmax early by
        ``earliest_artery_s``), and
        Dice of the thresholded core (CBF < 30 % of the brain median) and of the Tmax > 6 s
        region against the true core and core + penumbra.
    """
    anat = truth["anatomy"]
    brain = np.isin(anat, (2, 3, 5)) & perfusion_brain(case_maps)
    normal = np.isin(anat, (2, 3)) & (truth["tmax"] < 3) & (case_maps["cbf"] > 0)
    out: dict[str, Any] = {}
    if normal.any():
        for k in ("cbf", "cbv"):
            out[f"{k}_ratio_normal"] = round(float(np.median(case_maps[k][normal] / np.maximum(truth[k][normal], 1e-3))), 3)
        err = case_maps["tmax"][normal] - truth["tmax"][normal]
        out["tmax_err_normal_s"] = round(float(np.median(err)), 2)
        out["tmax_abs_err_normal_s"] = round(float(np.median(np.abs(err))), 2)
    art = truth.get("artery_delay")
    if art is not None and (art >= 0).any():
        earliest = float(art[art >= 0].min())
        out["earliest_artery_s"] = round(earliest, 2)
        if normal.any():
            err = case_maps["tmax"][normal] - (truth["tmax"][normal] - earliest)
            out["tmax_err_slab_s"] = round(float(np.median(err)), 2)
            out["tmax_abs_err_slab_s"] = round(float(np.median(np.abs(err))), 2)
        if aif_voxels is not None and len(aif_voxels):
            at = art[tuple(np.asarray(aif_voxels, int).T)]
            out["aif_late_s"] = round(float(at.mean() - earliest), 2) if (at >= 0).all() else None
    core_pred = threshold_core(case_maps["cbf"], brain, core_threshold)
    out["core_dice_cbf_threshold"] = _dice(core_pred, truth["core"] > 0)
    hypo = (truth["core"] > 0) | (truth["penumbra"] > 0)
    out["hypoperfusion_dice_tmax6"] = _dice(brain & (case_maps["tmax"] > tmax_threshold), hypo)
    return out
