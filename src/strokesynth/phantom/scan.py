"""Simulate one scan (an axial slab) of a phantom subject: ground truth, then the images.

The order is the physics: anatomy and the occlusion give ground-truth CBF, CBV, MTT and
delay per voxel; the forward model turns them into a 4D CTP in HU with CT noise; the
perfusion module computes the CBF/CBV/MTT/Tmax maps from that scan, like vendor software;
DWI and FLAIR come from the same tissue fractions with the core's contrast, a bias field and
Rician noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from strokesynth.data.case import Case
from strokesynth.data.volume import Volume
from strokesynth.perfusion.maps import PerfusionConfig, analyze_ctp
from strokesynth.phantom.anatomy import SubjectWarp, Tissue, sample_tissue
from strokesynth.phantom.atlas import mni_atlas
from strokesynth.phantom.config import PhantomConfig
from strokesynth.phantom.fields import RandomField
from strokesynth.phantom.kinetics import FINE_DT, Bolus, ResponseTable, tissue_enhancement
from strokesynth.phantom.motion import MovedWarp, draw_trajectory, pose_frames
from strokesynth.phantom.motion import describe as describe_motion
from strokesynth.phantom.stroke import Stroke, side_of, territory_of

#: anatomical label map values
ANATOMY_LABELS = {"background": 0, "csf": 1, "gm": 2, "wm": 3, "ventricle": 4, "lesion": 5}
#: ground-truth keys written beside each case
TRUTH_KEYS = ("cbf", "cbv", "mtt", "tmax", "core", "penumbra", "anatomy", "artery_delay")


@dataclass
class SubjectDraw:
    """Everything drawn once per subject (shared by its slabs)."""

    id: str
    warp: SubjectWarp
    stroke: Stroke | None
    cbf_gm: float
    cbf_wm: float
    cbv_gm: float
    cbv_wm: float
    territory_delay: np.ndarray  #: (len(ARTERY_GROUPS), 2) s, per group and side
    jitter: RandomField  #: territory boundary jitter
    ncct_drop: float
    dwi_ratio: float
    flair_ratio: float
    mr_gain: float  #: per-subject MR intensity scaling


@dataclass
class PhantomScan:
    """One simulated scan: the case as a reader would see it, plus the ground truth."""

    case: Case
    truth: dict[str, Volume]
    info: dict[str, Any] = field(default_factory=dict)


def correlated_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_px: float) -> np.ndarray:
    """Gaussian noise of unit SD, correlated in-plane (first two axes) by a Gaussian of ``sigma_px``."""
    white = rng.standard_normal(shape, dtype=np.float32)
    if sigma_px <= 0:
        return white
    sig = (sigma_px, sigma_px) + (0,) * (len(shape) - 2)
    smooth = ndimage.gaussian_filter(white, sig)
    # SD of white noise after a normalised 2D Gaussian: 1 / (2 sqrt(pi) sigma)
    return smooth * np.float32(2 * np.sqrt(np.pi) * sigma_px)


def _rician(rng: np.random.Generator, signal: np.ndarray, sigma: float) -> np.ndarray:
    n1 = rng.standard_normal(signal.shape, dtype=np.float32)
    n2 = rng.standard_normal(signal.shape, dtype=np.float32)
    return np.sqrt((signal + sigma * n1) ** 2 + (sigma * n2) ** 2).astype(np.float32)


def slab_affine(cfg: PhantomConfig, n_z: int, z_center: float) -> np.ndarray:
    """Voxel -> scanner mm of a slab centred on (0, 0, ``z_center``)."""
    g = cfg.grid
    aff = np.diag([g.spacing_mm, g.spacing_mm, g.slice_mm, 1.0])
    aff[:3, 3] = [-(g.size - 1) / 2 * g.spacing_mm, -(g.size - 1) / 2 * g.spacing_mm,
                  z_center - (n_z - 1) / 2 * g.slice_mm]
    return aff


def ground_truth(cfg: PhantomConfig, draw: SubjectDraw, tissue: Tissue) -> dict[str, np.ndarray]:
    """Ground-truth perfusion and labels on the scan grid, each ``(X, Y, Z)``."""
    shape = tissue.gm.shape
    mni = tissue.mni.reshape(-1, 3)
    terr = territory_of(mni, draw.jitter(mni) * 4.0)
    side = side_of(mni)
    if draw.stroke is not None:
        f = draw.stroke.fields(mni, terr)
    else:
        one = np.ones(len(mni), np.float32)
        f = {"rcbf": one, "rcbv": one, "delay": 0 * one, "hypo": 0 * one, "core": 0 * one}
    f = {k: v.reshape(shape) for k, v in f.items()}
    base_delay = draw.territory_delay[terr, side].reshape(shape)
    cbf_n = tissue.gm * draw.cbf_gm + tissue.wm * draw.cbf_wm
    cbv_n = tissue.gm * draw.cbv_gm + tissue.wm * draw.cbv_wm
    cbf = (f["rcbf"] * cbf_n).astype(np.float32)
    cbv = (f["rcbv"] * cbv_n).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        mtt = np.where(cbf > 1e-3, 60 * cbv / cbf, 0).astype(np.float32)
    delay = (base_delay + f["delay"]).astype(np.float32)
    parenchyma = tissue.parenchyma >= 0.5
    core = parenchyma & (f["rcbf"] < cfg.stroke.core_threshold)
    tmax = np.where(tissue.parenchyma > 0.05, delay, 0).astype(np.float32)
    penumbra = parenchyma & ~core & (tmax > cfg.stroke.penumbra_tmax_s)
    # anatomy: the dominant brain class of each voxel that is mostly brain
    fr = np.stack([tissue.csf, tissue.gm, tissue.wm])
    anatomy = np.where(fr.sum(0) >= 0.5, 1 + fr.argmax(0), 0).astype(np.uint8)
    anatomy[(anatomy == 1) & (tissue.ventricle > 0.5 * tissue.csf)] = ANATOMY_LABELS["ventricle"]
    anatomy[core] = ANATOMY_LABELS["lesion"]
    return {
        "cbf": cbf, "cbv": cbv, "mtt": mtt, "tmax": tmax, "delay": delay, "core": core.astype(np.uint8),
        "penumbra": penumbra.astype(np.uint8), "anatomy": anatomy, "core_fraction": f["core"].astype(np.float32),
        "hypo": f["hypo"].astype(np.float32), "territory": terr.reshape(shape), "side": side.reshape(shape),
        "artery_delay": artery_delay_map(draw, tissue),
    }


def _info(case_id: str, draw: SubjectDraw, n_z: int, z_center_mni: float, gt: dict[str, np.ndarray],
          affine: np.ndarray) -> dict[str, Any]:
    voxel_ml = float(np.prod(np.abs(np.diag(affine)[:3]))) / 1000.0
    return {
        "case": case_id, "subject": draw.id, "slices": n_z, "slab_center_mni_z": round(z_center_mni, 1),
        "core_ml": round(float(gt["core"].sum()) * voxel_ml, 2),
        "penumbra_ml": round(float(gt["penumbra"].sum()) * voxel_ml, 2),
        "stroke": draw.stroke.describe() if draw.stroke is not None else None,
    }


#: arterial blood fraction above which a voxel carries the arterial bolus
ARTERY_MIN_FRACTION = 0.01


def artery_arrival(draw: SubjectDraw, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bolus arrival (s after the AIF of the internal carotid, whose delay is 0) and gain of
    arterial voxels with atlas ids ``ids`` ``(N,)``: their territory's delay, plus the
    occlusion's extra delay and collateral damping in the occluded territory."""
    ids = ids.astype(int)
    group, side = np.maximum(ids - 1, 0) // 2, np.maximum(ids - 1, 0) % 2
    delay = draw.territory_delay[group, side]
    gain = np.ones(len(ids), np.float32)
    if draw.stroke is not None:
        hit = (group == draw.stroke.territory) & (side == draw.stroke.side) & (ids > 0)
        delay = delay + hit * draw.stroke.delay
        gain[hit] = draw.stroke.collateral
    return delay, gain


def artery_delay_map(draw: SubjectDraw, tissue: Tissue) -> np.ndarray:
    """True bolus arrival (s) of every voxel that carries arterial blood, -1 elsewhere ``(X, Y, Z)``:
    what an AIF chosen there is late by (the earliest is 0, the internal carotid)."""
    out = np.full(tissue.artery.shape, -1.0, np.float32)
    art = tissue.artery > ARTERY_MIN_FRACTION
    out[art] = artery_arrival(draw, tissue.artery_id[art])[0]
    return out


def render_ctp(cfg: PhantomConfig, draw: SubjectDraw, tissue: Tissue, gt: dict[str, np.ndarray], bolus: Bolus,
               table: ResponseTable, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free CTP of one head position: the baseline HU ``(X, Y, Z)`` and the frames at
    ``times`` ``(X, Y, Z, T)`` (baseline + parenchymal, arterial and venous enhancement)."""
    t_cfg, b_cfg = cfg.tissue, cfg.bolus
    shape = tissue.gm.shape
    enh = np.zeros((*shape, len(times)), np.float32)
    par = tissue.parenchyma > 0.01
    enh[par] = tissue_enhancement(table, times, gt["cbf"][par], gt["cbv"][par], gt["delay"][par],
                                  b_cfg.kh, b_cfg.rho)
    # arteries: the AIF, delayed and damped distal to the occlusion
    art = tissue.artery > ARTERY_MIN_FRACTION
    a_delay, a_gain = artery_arrival(draw, tissue.artery_id[art])
    enh[art] += (tissue.artery[art] * a_gain)[:, None] * bolus(times[None, :] - a_delay[:, None]).astype(np.float32)
    # venous sinus: the AIF dispersed through the brain (area preserved), later
    vein = tissue.vein > 0.01
    if vein.any():
        fine = np.arange(0, max(float(times[-1]), 0.0) + 60, FINE_DT)
        kernel = np.exp(-fine / 4.0)
        vof = np.convolve(bolus(fine), kernel / kernel.sum())[: len(fine)]
        vof_t = np.interp(times - b_cfg.vof_delay_s, fine, vof, left=0.0)
        enh[vein] += tissue.vein[vein][:, None] * vof_t[None, :].astype(np.float32)
    hu = (tissue.gm * t_cfg.hu_gm + tissue.wm * t_cfg.hu_wm + tissue.csf * t_cfg.hu_csf
          + (tissue.artery + tissue.vein) * t_cfg.hu_blood + tissue.skull * t_cfg.hu_bone
          + tissue.scalp * t_cfg.hu_scalp + tissue.air * t_cfg.hu_air)
    hu = hu - draw.ncct_drop * gt["core_fraction"] * (tissue.parenchyma > 0.05)
    return hu, hu[..., None] + enh


def simulate_scan(cfg: PhantomConfig, draw: SubjectDraw, n_z: int, z_center_mni: float,
                  rng: np.random.Generator, case_id: str, *, images: bool = True) -> PhantomScan:
    """Simulate the slab of ``n_z`` slices centred at MNI z ``z_center_mni`` for subject ``draw``.

    ``images=False`` stops after the ground truth (the case holds only its ``lesion``): about
    50 times faster, for planning and for checking a cohort's lesions.
    """
    g, b_cfg, s_cfg = cfg.grid, cfg.bolus, cfg.scanner
    affine = slab_affine(cfg, n_z, draw.warp.scanner_z_for(z_center_mni))
    shape = (g.size, g.size, n_z)
    tissue = sample_tissue(mni_atlas(), draw.warp, affine, shape, g.sub_slices)
    gt = ground_truth(cfg, draw, tissue)
    if not images:
        case = Case(case_id, draw.id, {"lesion": Volume(gt["core"], affine, kind="label")}, meta={"source": "phantom"})
        truth = {k: Volume(gt[k], affine, kind="label" if gt[k].dtype == np.uint8 else "image") for k in TRUTH_KEYS}
        return PhantomScan(case, truth, _info(case_id, draw, n_z, z_center_mni, gt, affine))

    # --- 4D CTP --------------------------------------------------------------------------
    bolus = Bolus(t0=float(rng.uniform(*b_cfg.aif_t0)), alpha=b_cfg.aif_alpha, beta=float(rng.uniform(*b_cfg.aif_beta)),
                  peak=float(rng.uniform(*b_cfg.aif_peak_hu)), recirculation=b_cfg.recirculation,
                  recirculation_delay=b_cfg.recirculation_delay_s)
    times = np.arange(b_cfg.frames) * b_cfg.dt
    max_delay = float(gt["delay"].max()) if gt["delay"].size else 0.0
    table = ResponseTable(bolus, times[-1] + max_delay + 5.0, b_cfg.residue, b_cfg.residue_shape)
    hu, still = render_ctp(cfg, draw, tissue, gt, bolus, table, times)
    sigma_px = s_cfg.noise_corr_mm / g.spacing_mm
    trajectory = draw_trajectory(cfg.motion, b_cfg.frames, rng) if cfg.motion.prob > 0 else None
    if trajectory is not None:
        # the head moves in the fixed scanner: each pose is imaged afresh (sharp edges where the
        # head now is), and the noise stays the scanner's
        for pose, frames in pose_frames(trajectory):
            if pose is None:
                continue
            moved = sample_tissue(mni_atlas(), MovedWarp(draw.warp, pose), affine, shape, g.sub_slices)
            _, frames_hu = render_ctp(cfg, draw, moved, ground_truth(cfg, draw, moved), bolus, table, times[frames])
            still[..., frames] = frames_hu
    ctp = still + s_cfg.ctp_noise_hu * correlated_noise(rng, still.shape, sigma_px)
    ct = hu + s_cfg.ct_noise_hu * correlated_noise(rng, shape, sigma_px)
    ctp = np.clip(np.rint(ctp), -1024, 3071).astype(np.int16)
    ct = np.clip(np.rint(ct), -1024, 3071).astype(np.int16)

    # --- vendor-like maps from the simulated scan ---------------------------------------------
    ctp_vol = Volume(ctp, affine, dt=b_cfg.dt, disk_dtype=np.int16)
    perf = analyze_ctp(ctp_vol, PerfusionConfig(method=cfg.perfusion_method, kh=b_cfg.kh, rho=b_cfg.rho,
                                                motion_correction=cfg.motion.prob > 0))

    # --- MR -------------------------------------------------------------------------------------
    bias_field = RandomField(rng, 2, 60.0)
    pts = (np.indices(shape).reshape(3, -1).T @ affine[:3, :3].T + affine[:3, 3])
    bias = np.exp(s_cfg.bias * bias_field(pts)).reshape(2, *shape)
    vessel = tissue.artery + tissue.vein
    core_frac = gt["core_fraction"] * (tissue.parenchyma > 0.05)
    dwi = draw.mr_gain * s_cfg.dwi_scale * (1.12 * tissue.gm + 1.0 * tissue.wm + 0.12 * tissue.csf
                                            + 0.15 * vessel + 0.1 * tissue.scalp)
    dwi = dwi * (1 + (draw.dwi_ratio - 1) * core_frac) * bias[0]
    flair = draw.mr_gain * s_cfg.flair_scale * (1.15 * tissue.gm + 0.85 * tissue.wm + 0.1 * tissue.csf + 0.05 * vessel
                                 + 1.3 * tissue.scalp + 0.05 * tissue.skull)
    flair = flair * (1 + (draw.flair_ratio - 1) * core_frac) * bias[1]
    dwi = _rician(rng, dwi, s_cfg.mr_noise * s_cfg.dwi_scale)
    flair = _rician(rng, flair, s_cfg.mr_noise * s_cfg.flair_scale)

    modalities = {
        "ct": Volume(ct, affine, disk_dtype=np.int16),
        "ctp": ctp_vol,
        **{k: perf.maps[k] for k in ("cbf", "cbv", "mtt", "tmax")},
        "dwi": Volume(dwi, affine),
        "flair": Volume(flair, affine),
        "lesion": Volume(gt["core"], affine, kind="label"),
    }
    case = Case(case_id, draw.id, modalities, meta={"source": "phantom"})
    truth = {k: Volume(gt[k], affine, kind="label" if gt[k].dtype == np.uint8 else "image") for k in TRUTH_KEYS}
    truth["delay"] = Volume(gt["delay"], affine)
    truth["mip"] = perf.maps["mip"]
    info = {
        **_info(case_id, draw, n_z, z_center_mni, gt, affine),
        "motion": describe_motion(trajectory),
        "aif": {"t0_s": round(bolus.t0, 2), "peak_hu": round(bolus.peak, 1), "beta_s": round(bolus.beta, 2)},
        "perfusion": {**perf.info, "aif_voxels": perf.aif.voxels.tolist()},
    }
    return PhantomScan(case, truth, info)
