"""The phantom written as an ISLES'24 release: acute CTP (with maps, NCCT, CTA), the follow-up DWI
and ADC, the *final* infarct, clinical tables, at the geometry of the real data.

Each subject is one whole-brain slab simulated by :func:`~strokesynth.phantom.cohort.subject_scans`
at ``1/factor`` of the written resolution (in plane and through plane: a 512 x 512 x 80 grid at
0.45 x 0.45 x 2 mm is simulated at 256 x 256 x 40 at 0.9 x 0.9 x 4 mm, because simulating at 512
takes 4.5 min and 20 GB per subject on 2 cores) and interpolated onto the written grid (trilinear;
masks from their interpolated fractions at 0.5), where the NCCT and CTP get fresh noise.

What ISLES'24 holds that the acute phantom does not, and how it is made here:

- **Final infarct** (the mask, drawn on the follow-up MRI): the core where the patient was
  recanalised (``tici`` 2b-3, probability :data:`RECANALISED_PROB`), the core and the whole
  penumbra (Tmax > 6 s) where not: the final infarct lies between the CBF-threshold core and the
  Tmax > 6 s region, as it does in patients.
- **Follow-up DWI and ADC** (2-9 days after the CTP): the phantom's DWI with the final infarct
  bright (x :data:`DWI_INFARCT_RATIO`) and an ADC of 800e-6 mm^2/s in brain, halved in the infarct.
- **CTA**: the CTP frame at the peak of the whole-brain enhancement (arterial phase).
- **Vendor maps**: the phantom's oSVD maps of the simulated CTP, interpolated like the images.
- **Clinical tables** (``phenotype/<sub>/ses-0N/*.csv``): age, sex, admission NIHSS (grows with
  the hypoperfused volume), onset-to-imaging time (session 1); recanalisation (TICI), days to the
  follow-up MRI and the 3-month mRS (grows with the final infarct) (session 2).
- **A whole-brain label map** (``*_ses-02_space-ncct_dseg.nii.gz``, not in the release; table
  ``phantom_ct``): CSF, ventricles, GM, WM and the final infarct, for the label-map recipe, as a
  user would add SynthSeg's.
- Not made: the LVO and Circle-of-Willis masks.

``groundtruth/<sub>/`` holds the core, penumbra and final infarct on the written grid and
``groundtruth/phantom.json`` the facts of each subject.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from strokesynth._fs import atomic_dir, write_json_atomic
from strokesynth.config import save_config
from strokesynth.data.case import Case
from strokesynth.data.volume import Volume
from strokesynth.io import isles24
from strokesynth.io.nifti import write_array, write_volume
from strokesynth.phantom.cohort import subject_scans
from strokesynth.phantom.config import PhantomConfig
from strokesynth.phantom.scan import ANATOMY_LABELS

#: probability that a subject was recanalised (final infarct = the core)
RECANALISED_PROB = 0.5
#: follow-up DWI signal of the final infarct relative to the same tissue outside it
DWI_INFARCT_RATIO = 1.9
#: noise (SD, HU) added at the written grid to the interpolated NCCT and CTP
FINE_NOISE_HU = 3.0


@dataclasses.dataclass(frozen=True)
class Isles24Geometry:
    """The written grid: ``size`` x ``size`` x ``slices`` at ``slice_mm``, ``frames`` CTP frames at
    ``dt`` s, simulated at ``1/factor`` of that resolution; ``oblique_deg`` tilts the whole grid about
    the left-right axis (a gantry tilt: every image of the subject shares the oblique affine, as the
    release's co-registered derivatives do)."""

    size: int = 512
    slices: int = 80
    slice_mm: float = 2.0
    frames: int = 40
    dt: float = 1.5
    factor: int = 2
    oblique_deg: float = 0.0

    def simulation(self, cfg: PhantomConfig) -> PhantomConfig:
        """The phantom config of the simulation: one slab per subject at the coarse grid, the field
        of view of ``cfg``."""
        fov = cfg.grid.size * cfg.grid.spacing_mm
        sim = self.size // self.factor
        grid = dataclasses.replace(cfg.grid, size=sim, spacing_mm=fov / sim, slices=[max(2, self.slices // self.factor)],
                                   slice_mm=self.slice_mm * self.factor, sub_slices=1, two_slab_prob=0.0)
        bolus = dataclasses.replace(cfg.bolus, frames=self.frames, dt=self.dt)
        return dataclasses.replace(cfg, grid=grid, bolus=bolus)


def _fine_affine(affine: np.ndarray, factor: int) -> np.ndarray:
    """The affine of a grid ``factor`` times finer whose voxels tile the coarse ones (trilinear
    interpolation with ``align_corners=False`` puts fine voxel i at coarse (i + 0.5) / f - 0.5)."""
    step = np.diag([1.0 / factor] * 3 + [1.0])
    step[:3, 3] = 0.5 / factor - 0.5
    return affine @ step


def _upsample(array: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Trilinear interpolation of ``(X, Y, Z)`` onto ``shape`` (float32)."""
    with torch.inference_mode():
        t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
        return torch.nn.functional.interpolate(t, size=shape, mode="trilinear", align_corners=False)[0, 0].numpy()


def _fine_anatomy(coarse: np.ndarray, factor: int, final: np.ndarray) -> np.ndarray:
    """The whole-brain label map (``ANATOMY_LABELS``, table ``phantom_ct``) on the written grid,
    uint8 ``(X, Y, Z)``: each coarse voxel's tissue (a core voxel takes its nearest tissue's) on
    the ``factor**3`` fine voxels it holds (the nearest coarse centre, as :func:`_fine_affine`
    lays them), then the final infarct ``final`` inside the brain as ``lesion``."""
    lesion = coarse == ANATOMY_LABELS["lesion"]
    tissue = coarse
    if lesion.any():
        nearest = ndimage.distance_transform_edt(lesion, return_distances=False, return_indices=True)
        tissue = coarse[tuple(nearest)]
    fine = tissue
    for axis in range(3):
        fine = np.repeat(fine, factor, axis=axis)
    fine = fine.astype(np.uint8)
    fine[(final > 0) & (fine > 0)] = ANATOMY_LABELS["lesion"]
    return fine


def _clinical(rng: np.random.Generator, healthy: bool, hypo_ml: float, final_ml: float, recanalised: bool,
              days: int) -> dict[str, dict[str, Any]]:
    nihss = 0 if healthy else int(np.clip(round(3 + 0.1 * hypo_ml + rng.normal(0, 3)), 0, 42))
    mrs = int(np.clip(round(0.5 + 0.03 * final_ml + rng.normal(0, 0.8)), 0, 6))
    return {"ses-01": {"age": int(np.clip(round(rng.normal(72, 12)), 30, 99)), "sex": str(rng.choice(["F", "M"])),
                       "nihss_admission": nihss, "onset_to_imaging_min": int(rng.integers(45, 600))},
            "ses-02": {"tici": "2b-3" if recanalised else "0-2a", "days_to_followup_mri": days,
                       "mrs_3month": mrs}}


def isles24_subject(cfg: PhantomConfig, geometry: Isles24Geometry, index: int, healthy: bool,
                    ) -> tuple[Case, np.ndarray, float, dict[str, np.ndarray], dict[str, Any]]:
    """One subject on the written grid.

    Returns:
        ``(case, ctp, dt, truth, facts)``: the case without its CTP (``ct``, ``cta``, the four maps,
        ``dwi``, ``adc``, ``lesion`` = final infarct, clinical tables in ``meta``), the CTP as int16
        ``(X, Y, Z, T)`` in Fortran order (as NIfTI stores it), its frame interval (s), the masks
        ``core``/``penumbra``/``final`` (uint8) and the subject's facts.
    """
    sim_cfg = geometry.simulation(cfg)
    scan = subject_scans(sim_cfg, index, healthy, index + 1)[0]
    rng = np.random.default_rng([cfg.seed, index, 24])
    case, truth = scan.case, scan.truth
    f = geometry.factor
    coarse = case["ct"].spatial_shape
    shape = (coarse[0] * f, coarse[1] * f, coarse[2] * f)
    affine = _fine_affine(case["ct"].affine, f)
    if geometry.oblique_deg:
        a = np.deg2rad(geometry.oblique_deg)
        tilt = np.array([[1, 0, 0, 0], [0, np.cos(a), -np.sin(a), 0], [0, np.sin(a), np.cos(a), 0], [0, 0, 0, 1.0]])
        affine = tilt @ affine
    voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0
    core = truth["core"].array > 0
    penumbra = truth["penumbra"].array > 0
    recanalised = bool(rng.uniform() < RECANALISED_PROB)
    final = core if recanalised else (core | penumbra)
    days = int(rng.integers(2, 10))

    def fine_mask(mask: np.ndarray) -> np.ndarray:
        return (_upsample(mask.astype(np.float32), shape) >= 0.5).astype(np.uint8)

    masks = {"core": fine_mask(core), "penumbra": fine_mask(penumbra & ~core), "final": fine_mask(final)}

    def fine_ct(array: np.ndarray) -> np.ndarray:
        out = _upsample(array, shape) + FINE_NOISE_HU * rng.standard_normal(shape, dtype=np.float32)
        return np.clip(np.rint(out), -1024, 3071)

    ct = Volume(fine_ct(case["ct"].array), affine, disk_dtype=np.int16)
    raw = case["ctp"].array
    arterial = int(raw.reshape(-1, raw.shape[-1]).mean(axis=0).argmax())
    ctp = np.empty((*shape, raw.shape[-1]), np.int16, order="F")
    for k in range(raw.shape[-1]):
        ctp[..., k] = fine_ct(raw[..., k]).astype(np.int16)
    cta = Volume(ctp[..., arterial].astype(np.float32), affine, disk_dtype=np.int16)
    maps = {k: Volume(np.clip(_upsample(case[k].array, shape), 0, None), affine) for k in ("cbf", "cbv", "mtt", "tmax")}
    brain = (truth["anatomy"].array > 0).astype(np.float32)
    extra = (final & ~core).astype(np.float32)
    dwi = case["dwi"].array * (1.0 + (DWI_INFARCT_RATIO - 1.0) * extra * brain)
    adc = 800.0 * brain * (1.0 - 0.5 * final) + rng.normal(0.0, 25.0, brain.shape) * brain
    follow = {"session": "ses-02", "days_after_ctp": days}
    anatomy = _fine_anatomy(truth["anatomy"].array, f, masks["final"])
    hypo_ml = float((core | penumbra).sum()) * float(abs(np.linalg.det(case["ct"].affine[:3, :3]))) / 1000.0
    final_ml = float(masks["final"].sum()) * voxel_ml
    sub = f"sub-stroke{index + 1:04d}"
    clinical = _clinical(rng, healthy, hypo_ml, final_ml, recanalised, days)
    modalities = {"ct": ct, "cta": cta, **maps,
                  "dwi": Volume(np.clip(_upsample(dwi, shape), 0, None), affine, meta=follow),
                  "adc": Volume(np.clip(_upsample(adc, shape), 0, None), affine, meta=follow),
                  "lesion": Volume(masks["final"], affine, kind="label", meta=follow),
                  "anatomy": Volume(anatomy, affine, kind="label", meta={**follow, "sidecar": {"LabelTable": "phantom_ct"}})}
    out = Case(sub, sub, modalities, meta={"source": "phantom", "clinical": clinical})
    facts = {"subject": sub, "healthy": healthy, "recanalised": recanalised, "days_to_followup_mri": days,
             "core_ml": round(float(masks["core"].sum()) * voxel_ml, 2),
             "penumbra_ml": round(float(masks["penumbra"].sum()) * voxel_ml, 2), "final_ml": round(final_ml, 2),
             "shape": list(shape), "frames": int(raw.shape[-1]), "dt_s": float(case["ctp"].dt),
             "simulated_at": list(coarse)}
    return out, ctp, float(case["ctp"].dt), masks, facts


def write_isles24_phantom(cfg: PhantomConfig, dest: str | os.PathLike, geometry: Isles24Geometry | None = None, *,
                          force: bool = False, progress: Callable[[str], Any] | None = None) -> Path:
    """Simulate ``cfg.subjects`` stroke and ``cfg.healthy`` healthy subjects and write them to ``dest``
    as an ISLES'24 tree, one subject at a time (a 512 px CTP is 1.7 GB: nothing is held for the
    cohort); all or nothing."""
    geometry = geometry or Isles24Geometry()
    facts = []
    with atomic_dir(dest, force=force) as tmp:
        for i in range(cfg.subjects + cfg.healthy):
            case, ctp, dt, masks, info = isles24_subject(cfg, geometry, i, healthy=i >= cfg.subjects)
            sub = isles24.write_case(case, tmp)
            write_array(ctp, case["ct"].affine, tmp / "derivatives" / sub / "ses-01" / f"{sub}_ses-01_space-ncct_ctp.nii.gz",
                        dt=dt, sidecar={"FrameTimesStart": [round(k * dt, 4) for k in range(ctp.shape[-1])],
                                        "FrameTimesUnit": "s"})
            for key, mask in masks.items():
                write_volume(Volume(mask, case["ct"].affine, kind="label"), tmp / "groundtruth" / sub / f"{key}.nii.gz")
            facts.append(info)
            if progress is not None:
                progress(f"{sub}: {'x'.join(map(str, info['shape']))} x {info['frames']} frames, core {info['core_ml']} ml, "
                         f"final infarct {info['final_ml']} ml ({'recanalised' if info['recanalised'] else 'not recanalised'})")
            del case, ctp
        write_json_atomic(tmp / "groundtruth" / "phantom.json",
                          {"geometry": dataclasses.asdict(geometry), "subjects": facts})
        save_config(cfg, tmp / "groundtruth" / "phantom.yaml")
    return Path(dest)
