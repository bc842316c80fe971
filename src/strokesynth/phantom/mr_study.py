"""Whole-brain MR studies of phantom subjects: DWI (b = 1000), ADC, FLAIR, T1, brain mask and an
anatomical label map, skull-stripped and not, on a 3D grid covering the head.

These feed the systems that need whole volumes rather than CTP slabs: the label-map → DWI
translation and its 3D lesion GAN (anatomy + DWI + lesion, healthy and stroke cohorts) and
pseudo-healthy synthesis (middle slices of whole volumes). A subject's anatomy, pose, ventricle
size (the age-like variation) and stroke are drawn as for the CTP phantom (same
:class:`~strokesynth.phantom.scan.SubjectDraw`); the lesion is the core of the same stroke model,
its volume drawn in the ISLES 2018 size groups over the whole brain.

Signal model (per tissue compartment, partial volumes summed, then a smooth bias field and
Rician noise): DWI ``S = S0 exp(-b ADC)`` with ``b`` in s/mm²; ADC is computed from the noisy b0
and b1000 images as a scanner does, ``-ln(S_b / S_0) / b``. The infarct core lowers ADC to
``radc_core`` of normal (acute cytotoxic oedema, typically 0.5-0.7) and raises T2 (S0) a little.

Anatomical labels (:data:`MR_LABELS`): the MNI ICBM152 template has no subcortical parcellation,
so deep grey nuclei, cerebellum and brain stem are MNI-coordinate approximations (documented in
:func:`label_map`), as the vascular territories are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from strokesynth._fs import write_json_atomic
from strokesynth.config import save_config
from strokesynth.data.case import Case
from strokesynth.data.volume import Volume
from strokesynth.errors import OutputError
from strokesynth.io.cohort import write_cohort
from strokesynth.phantom.anatomy import Tissue, sample_tissue
from strokesynth.phantom.atlas import mni_atlas
from strokesynth.phantom.cohort import BRAIN_Z_MNI, draw_subject
from strokesynth.phantom.config import MRStudyConfig, PhantomConfig
from strokesynth.phantom.fields import RandomField
from strokesynth.phantom.lesion_size import draw_target_ml, fit_core_radius, size_position, slab_core_ml
from strokesynth.phantom.scan import SubjectDraw, _rician, ground_truth
from strokesynth.phantom.stroke import side_of

#: label values of the whole-brain anatomical map; the lesion is the last class
MR_LABELS = {
    "background": 0, "csf": 1, "ventricles": 2, "gm_right": 3, "gm_left": 4, "wm_right": 5, "wm_left": 6,
    "deep_grey_right": 7, "deep_grey_left": 8, "cerebellum": 9, "brain_stem": 10, "lesion": 11,
}
#: modality keys of a study (``*_brain``: skull-stripped, 0 outside ``brain``)
MR_KEYS = ("dwi", "adc", "flair", "t1", "dwi_brain", "adc_brain", "flair_brain", "t1_brain", "brain", "anatomy",
           "lesion")


def study_affine(cfg: MRStudyConfig, center_z: float) -> np.ndarray:
    """Voxel -> scanner mm of the study grid centred on (0, 0, ``center_z``)."""
    aff = np.diag([cfg.spacing_mm, cfg.spacing_mm, cfg.slice_mm, 1.0])
    aff[:3, 3] = [-(cfg.size - 1) / 2 * cfg.spacing_mm, -(cfg.size - 1) / 2 * cfg.spacing_mm,
                  center_z - (cfg.slices - 1) / 2 * cfg.slice_mm]
    return aff


def label_map(tissue: Tissue, core: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The anatomical label map (:data:`MR_LABELS`) of a study, uint8 ``(X, Y, Z)``.

    Each voxel that is mostly brain takes its dominant tissue (CSF, GM, WM); CSF in the deep
    central region is ``ventricles``; then, by MNI coordinates of the voxel centre (mm):
    ``cerebellum`` below the tentorium (y < -40 and z < -20, or y < -55 and z < -10 with
    |x| < 45), ``brain_stem`` (|x| < 14, -42 < y < -12, z < -8), ``deep_grey`` GM at least
    12 mm deep in the brain with |x| < 32, -32 < y < 25, -12 < z < 22 (basal ganglia and
    thalamus); GM/WM split by hemisphere (x >= 0 right); the core is ``lesion``.
    """
    fr = np.stack([tissue.csf, tissue.gm, tissue.wm])
    brain = fr.sum(0) >= 0.5
    dominant = fr.argmax(0)
    x, y, z = (tissue.mni[..., i] for i in range(3))
    right = side_of(tissue.mni.reshape(-1, 3)).reshape(x.shape) == 0
    spacing = np.abs(np.diag(affine)[:3])
    depth = ndimage.distance_transform_edt(brain, sampling=spacing)
    lab = np.zeros(x.shape, np.uint8)
    csf = brain & (dominant == 0)
    gm = brain & (dominant == 1)
    wm = brain & (dominant == 2)
    lab[csf] = MR_LABELS["csf"]
    lab[csf & (tissue.ventricle > 0.5 * tissue.csf)] = MR_LABELS["ventricles"]
    lab[gm & right] = MR_LABELS["gm_right"]
    lab[gm & ~right] = MR_LABELS["gm_left"]
    lab[wm & right] = MR_LABELS["wm_right"]
    lab[wm & ~right] = MR_LABELS["wm_left"]
    deep = gm & (depth >= 12.0) & (np.abs(x) < 32) & (y > -32) & (y < 25) & (z > -12) & (z < 22)
    lab[deep & right] = MR_LABELS["deep_grey_right"]
    lab[deep & ~right] = MR_LABELS["deep_grey_left"]
    tissue_mask = gm | wm
    cerebellum = tissue_mask & (((y < -40) & (z < -20)) | ((y < -55) & (z < -10) & (np.abs(x) < 45)))
    lab[cerebellum] = MR_LABELS["cerebellum"]
    stem = tissue_mask & ~cerebellum & (np.abs(x) < 14) & (y > -42) & (y < -12) & (z < -8)
    lab[stem] = MR_LABELS["brain_stem"]
    lab[core & brain] = MR_LABELS["lesion"]
    return lab


def _signal(tissue: Tissue, values: dict[str, float], brain_scale: np.ndarray | None = None) -> np.ndarray:
    """Partial-volume sum of per-tissue signals; ``brain_scale`` multiplies the GM/WM part."""
    par = values["gm"] * tissue.gm + values["wm"] * tissue.wm
    if brain_scale is not None:
        par = par * brain_scale
    return (par + values["csf"] * tissue.csf + values["vessel"] * (tissue.artery + tissue.vein)
            + values["scalp"] * tissue.scalp + values["skull"] * tissue.skull).astype(np.float32)


def simulate_mr_study(cfg: PhantomConfig, draw: SubjectDraw, rng: np.random.Generator, case_id: str
                      ) -> tuple[Case, dict[str, Any]]:
    """The whole-brain MR study of subject ``draw`` as a Case (keys :data:`MR_KEYS`) and its facts."""
    m, s_cfg = cfg.mr, cfg.scanner
    affine = study_affine(m, draw.warp.scanner_z_for(m.center_mni_z))
    shape = (m.size, m.size, m.slices)
    tissue = sample_tissue(mni_atlas(), draw.warp, affine, shape, m.sub_slices)
    gt = ground_truth(cfg, draw, tissue)
    core = gt["core"] > 0
    core_frac = gt["core_fraction"] * (tissue.parenchyma > 0.05)
    adc_gm, adc_wm = float(rng.uniform(*m.adc_gm)), float(rng.uniform(*m.adc_wm))
    radc, t2 = float(rng.uniform(*m.radc_core)), float(rng.uniform(*m.t2_core))
    b = m.b_value * 1e-3  # b in ms/µm² with ADC in µm²/ms (= 1e-3 mm²/s)
    adc_factor = 1 - (1 - radc) * core_frac  # per voxel, parenchyma only
    s0_factor = 1 + (t2 - 1) * core_frac
    s0 = m.s0
    b0 = _signal(tissue, s0, s0_factor)
    # diffusion weighting per compartment: parenchyma with its (lesioned) ADC, CSF free water
    dw = ((s0["gm"] * tissue.gm * np.exp(-b * adc_gm * adc_factor)
           + s0["wm"] * tissue.wm * np.exp(-b * adc_wm * adc_factor)) * s0_factor
          + s0["csf"] * tissue.csf * np.exp(-b * m.adc_csf)
          + s0["vessel"] * (tissue.artery + tissue.vein) * np.exp(-b * 2.0)
          + s0["scalp"] * tissue.scalp * np.exp(-b * 0.4) + s0["skull"] * tissue.skull * np.exp(-b * 0.4))
    flair = _signal(tissue, m.flair, 1 + (draw.flair_ratio - 1) * core_frac)
    t1 = _signal(tissue, m.t1, 1 + (m.t1_core - 1) * core_frac)

    bias_field = RandomField(rng, 3, 60.0)
    pts = np.indices(shape).reshape(3, -1).T @ affine[:3, :3].T + affine[:3, 3]
    bias = np.exp(s_cfg.bias * bias_field(pts)).reshape(3, *shape)
    gain = draw.mr_gain * m.scale
    sigma = s_cfg.mr_noise * m.scale
    b0_img = _rician(rng, gain * b0 * bias[0], sigma)
    dwi_img = _rician(rng, gain * dw.astype(np.float32) * bias[0], sigma)
    flair_img = _rician(rng, gain * flair * bias[1], sigma)
    t1_img = _rician(rng, gain * t1 * bias[2], sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        adc = -np.log(np.maximum(dwi_img, 1e-3) / np.maximum(b0_img, 1e-3)) / m.b_value  # mm²/s
    adc = np.clip(np.nan_to_num(adc * 1e6, nan=0.0), 0, 4000).astype(np.float32)  # 1e-6 mm²/s
    adc[b0_img < 5 * sigma] = 0.0  # no signal (air): no ADC, as scanners write it

    brain = (tissue.gm + tissue.wm + tissue.csf) >= 0.5
    labels = label_map(tissue, core, affine)
    images = {"dwi": dwi_img, "adc": adc, "flair": flair_img, "t1": t1_img}
    mods: dict[str, Volume] = {k: Volume(v.astype(np.float32), affine) for k, v in images.items()}
    mods.update({f"{k}_brain": Volume((v * brain).astype(np.float32), affine) for k, v in images.items()})
    mods["brain"] = Volume(brain.astype(np.uint8), affine, kind="label")
    mods["anatomy"] = Volume(labels, affine, kind="label")
    mods["lesion"] = Volume(core.astype(np.uint8), affine, kind="label")
    case = Case(case_id, draw.id, mods, meta={"source": "phantom", "study": "mr"})
    voxel_ml = float(np.prod(np.abs(np.diag(affine)[:3]))) / 1000.0
    info = {
        "case": case_id, "subject": draw.id, "healthy": draw.stroke is None,
        "lesion_ml": round(float(core.sum()) * voxel_ml, 2),
        "brain_ml": round(float(brain.sum()) * voxel_ml, 1),
        "ventricle_ml": round(float((labels == MR_LABELS["ventricles"]).sum()) * voxel_ml, 1),
        "ventricle_enlarge": round(draw.warp.ventricle, 3),
        "adc_normal": {"gm": round(adc_gm, 3), "wm": round(adc_wm, 3)}, "radc_core": round(radc, 3),
        "stroke": draw.stroke.describe() if draw.stroke is not None else None,
    }
    return case, info


def mr_subject(cfg: PhantomConfig, index: int, healthy: bool) -> tuple[Case, dict[str, Any]]:
    """The MR study of subject ``index`` (random stream ``(seed, index, 1)``, apart from the CTP
    scans' ``(seed, index)``): anatomy and stroke drawn anywhere in the cerebrum (a stroke subject
    always has a core here), the lesion's whole-brain volume fitted to a target in the configured
    size groups."""
    rng = np.random.default_rng([cfg.seed, index, 1])
    # a stroke subject of an MR cohort always has a lesion (no "hypoperfusion only" subjects)
    lesioned = replace(cfg, stroke=replace(cfg.stroke, no_core_prob=0.0))
    draw = draw_subject(lesioned, index, healthy, rng, BRAIN_Z_MNI)
    m = cfg.mr
    fit = None
    if draw.stroke is not None and draw.stroke.core_radius > 0 and cfg.stroke.size_control:
        affine = study_affine(m, draw.warp.scanner_z_for(m.center_mni_z))
        target = draw_target_ml(lesioned.stroke, rng, size_position(lesioned.stroke, cfg.seed, index))
        volume = slab_core_ml(draw.stroke, draw, affine, (m.size, m.size, m.slices), cfg.stroke.core_threshold)
        radius, estimate = fit_core_radius(volume, target)
        draw.stroke.hypo_radius *= radius / draw.stroke.core_radius
        draw.stroke.core_radius = radius
        fit = {"target_ml": round(target, 2), "estimated_ml": round(estimate, 2), "core_radius_mm": round(radius, 1)}
    case, info = simulate_mr_study(cfg, draw, rng, f"mr_{index + 1:03d}")
    info["size_fit"] = fit
    return case, info


def generate_mr_studies(cfg: PhantomConfig, progress: Callable[[str], Any] | None = None
                        ) -> tuple[list[Case], list[dict[str, Any]]]:
    """``cfg.subjects`` stroke and ``cfg.healthy`` healthy whole-brain MR studies, and their facts."""
    cases, infos = [], []
    total = cfg.subjects + cfg.healthy
    for i in range(total):
        case, info = mr_subject(cfg, i, healthy=i >= cfg.subjects)
        cases.append(case)
        infos.append(info)
        if progress is not None:
            progress(f"subject {i + 1}/{total}: {case.id} ({'healthy' if info['healthy'] else 'stroke'}, lesion "
                     f"{info['lesion_ml']} ml, ventricles {info['ventricle_ml']} ml)")
    return cases, infos


def mr_summary(infos: list[dict[str, Any]], bounds: tuple[float, float] = (10.0, 50.0)) -> dict[str, Any]:
    """Counts, lesion size groups and ventricle volumes of a set of MR studies."""
    from strokesynth.phantom.cohort import size_groups

    lesion = np.array([i["lesion_ml"] for i in infos])
    vent = np.array([i["ventricle_ml"] for i in infos])
    return {"studies": len(infos), "healthy": sum(i["healthy"] for i in infos),
            "stroke_without_lesion": int(sum((not i["healthy"]) and i["lesion_ml"] == 0 for i in infos)),
            "lesions_by_size": size_groups(lesion, bounds),
            "ventricle_ml": {"min": float(vent.min()), "median": float(np.median(vent)), "max": float(vent.max())}}


def study_figure(cases: list[Case], path: str | os.PathLike, max_cases: int = 6) -> None:
    """One row per study (up to ``max_cases``): DWI, ADC, FLAIR, T1 and the label map at the slice
    of largest lesion (the middle slice when there is none)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cases[:max_cases]
    fig, axes = plt.subplots(len(rows), 5, figsize=(12, 2.5 * len(rows)), squeeze=False)
    for r, case in enumerate(rows):
        lesion = case["lesion"].array
        z = int(np.argmax(lesion.sum(axis=(0, 1)))) if lesion.any() else lesion.shape[2] // 2
        for c, (key, cmap) in enumerate((("dwi", "gray"), ("adc", "gray"), ("flair", "gray"), ("t1", "gray"),
                                          ("anatomy", "tab20"))):
            img = case[key].array[..., z]
            ax = axes[r, c]
            vmax = len(MR_LABELS) if key == "anatomy" else float(np.percentile(img, 99.5)) or 1.0
            ax.imshow(np.rot90(img), cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
            if lesion[..., z].any() and key != "anatomy":
                ax.contour(np.rot90(lesion[..., z]), levels=[0.5], colors="r", linewidths=0.6)
            ax.set_axis_off()
            if r == 0:
                ax.set_title(key.upper() if key != "anatomy" else "labels", fontsize=9)
        axes[r, 0].text(-0.05, 0.5, f"{case.id}, slice {z}", transform=axes[r, 0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def write_mr_studies(cases: list[Case], infos: list[dict[str, Any]], dest: str | os.PathLike, cfg: PhantomConfig,
                     *, layout: str = "plain", force: bool = False, figures: bool = True) -> Path:
    """Write the studies in ``layout`` (``plain`` or ``isles22``) with ``mr_phantom.json`` (facts,
    label table, summary), ``mr_phantom.yaml`` (the config) and an overview figure; all or nothing."""
    if layout not in ("plain", "isles22"):
        raise OutputError(dest, f"MR studies are written in the plain or isles22 layout, not {layout!r}")

    def extra(root: Path) -> None:
        write_json_atomic(root / "mr_phantom.json", {"labels": MR_LABELS, "summary": mr_summary(infos),
                                                      "studies": infos})
        save_config(cfg, root / "mr_phantom.yaml")
        if figures:
            study_figure(cases, root / "mr_phantom_overview.png")

    return write_cohort(cases, dest, layout=layout, force=force, extra=extra)


__all__ = ["MR_KEYS", "MR_LABELS", "generate_mr_studies", "label_map", "mr_subject", "mr_summary",
           "simulate_mr_study", "study_affine", "study_figure", "write_mr_studies"]
