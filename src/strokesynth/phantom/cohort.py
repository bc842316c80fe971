"""A phantom cohort: subjects, their slabs, and writing it in the ISLES 2018 layout.

Written layout (``ROOT`` is readable by ``open_cohort`` as ISLES 2018)::

    ROOT/
      case_1/SMIR.Brain.XX.O.{CT,CT_4DPWI,CT_CBF,CT_CBV,CT_MTT,CT_Tmax,MR_DWI,MR_Flair,OT}.N/...
      ...
      strokesynth.json          subjects (two slabs of one subject share it)
      groundtruth/case_1/       cbf, cbv, mtt, tmax, delay, core, penumbra, anatomy, mip (.nii.gz)
      groundtruth/phantom.json  per-case facts (stroke, lesion ml, slab) and the cohort summary
      groundtruth/phantom.yaml  the config that made it
      groundtruth/figures/      one montage per case

``groundtruth/`` holds no ``SMIR.*`` folders, so an ISLES 2018 reader never takes it for a case.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from strokesynth._fs import write_json_atomic
from strokesynth.config import save_config
from strokesynth.data.case import Case
from strokesynth.data.volume import Volume
from strokesynth.io.cohort import write_cohort
from strokesynth.io.nifti import read_volume, write_volume
from strokesynth.phantom.anatomy import SubjectWarp
from strokesynth.phantom.atlas import ARTERY_GROUPS, mni_atlas
from strokesynth.phantom.config import PhantomConfig
from strokesynth.phantom.fields import RandomField
from strokesynth.phantom.scan import TRUTH_KEYS, PhantomScan, SubjectDraw, simulate_scan
from strokesynth.phantom.stroke import Stroke
from strokesynth.plots import panel_row

TRUTH_DIR = "groundtruth"


def draw_subject(cfg: PhantomConfig, index: int, healthy: bool, rng: np.random.Generator,
                 z_range: tuple[float, float]) -> SubjectDraw:
    """Draw subject ``index``'s anatomy, tissue values and (unless ``healthy``) stroke."""
    t = cfg.tissue
    warp = SubjectWarp.draw(cfg.anatomy, rng)
    jitter = RandomField(rng, 2, 15.0)
    delay = rng.uniform(*t.territory_delay_s, size=(len(ARTERY_GROUPS), 2))
    delay[ARTERY_GROUPS.index("ica")] = 0.0
    stroke = None if healthy else Stroke.draw(cfg.stroke, rng, mni_atlas().tissue_voxels, z_range, jitter)
    return SubjectDraw(
        id=f"subject_{index + 1:03d}", warp=warp, stroke=stroke,
        cbf_gm=float(rng.uniform(*t.cbf_gm)), cbf_wm=float(rng.uniform(*t.cbf_wm)),
        cbv_gm=float(rng.uniform(*t.cbv_gm)), cbv_wm=float(rng.uniform(*t.cbv_wm)),
        territory_delay=delay, jitter=jitter,
        ncct_drop=float(rng.uniform(*cfg.stroke.ncct_core_drop_hu)),
        dwi_ratio=float(rng.uniform(*cfg.stroke.dwi_core_ratio)),
        flair_ratio=float(rng.uniform(*cfg.stroke.flair_core_ratio)),
        mr_gain=float(rng.uniform(*cfg.scanner.intensity_scale)),
    )


def _slabs(cfg: PhantomConfig, rng: np.random.Generator) -> list[tuple[int, float]]:
    """(slices, MNI z of the centre) of each slab of one subject; two adjacent slabs sometimes."""
    g = cfg.grid
    n_z = int(rng.choice(g.slices))
    center = float(rng.uniform(*g.slab_center_mni))
    if rng.uniform() >= g.two_slab_prob:
        return [(n_z, center)]
    n2 = int(rng.choice(g.slices))
    gap = (n_z + n2) / 2 * g.slice_mm + float(rng.uniform(-0.5, 1.0)) * g.slice_mm
    return [(n_z, center - gap / 2), (n2, center + gap / 2)]


def subject_scans(cfg: PhantomConfig, index: int, healthy: bool, first_case: int) -> list[PhantomScan]:
    """All scans of subject ``index`` (its own random stream: ``(seed, index)``)."""
    rng = np.random.default_rng([cfg.seed, index])
    slabs = _slabs(cfg, rng)
    lo = min(c - n * cfg.grid.slice_mm / 2 for n, c in slabs)
    hi = max(c + n * cfg.grid.slice_mm / 2 for n, c in slabs)
    draw = draw_subject(cfg, index, healthy, rng, (lo, hi))
    return [simulate_scan(cfg, draw, n_z, center, rng, f"case_{first_case + k}")
            for k, (n_z, center) in enumerate(slabs)]


def generate_cohort(cfg: PhantomConfig, progress: Callable[[str], Any] | None = None) -> list[PhantomScan]:
    """Simulate ``cfg.subjects`` stroke subjects, then ``cfg.healthy`` healthy ones."""
    scans: list[PhantomScan] = []
    for i in range(cfg.subjects + cfg.healthy):
        new = subject_scans(cfg, i, healthy=i >= cfg.subjects, first_case=len(scans) + 1)
        scans.extend(new)
        if progress is not None:
            progress(f"subject {i + 1}/{cfg.subjects + cfg.healthy}: " + ", ".join(
                f"{s.case.id} ({s.info['slices']} slices, core {s.info['core_ml']} ml)" for s in new))
    return scans


def cohort_summary(scans: list[PhantomScan]) -> dict[str, Any]:
    """Counts, lesion volumes (ml) and slab sizes of a cohort."""
    core = np.array([s.info["core_ml"] for s in scans])
    return {
        "cases": len(scans),
        "subjects": len({s.case.subject for s in scans}),
        "healthy_subjects": len({s.case.subject for s in scans if s.info["stroke"] is None}),
        "cases_without_core": int((core == 0).sum()),
        "core_ml": {"min": float(core.min()), "median": float(np.median(core)), "max": float(core.max())},
        "slices": sorted({s.info["slices"] for s in scans}),
        "cases_by_size": {"<10 ml": int((core < 10).sum()), "10-50 ml": int(((core >= 10) & (core <= 50)).sum()),
                          ">50 ml": int((core > 50).sum())},
    }


def case_figure(scan: PhantomScan, path: str | os.PathLike) -> None:
    """A montage of CT, CBF, CBV, MTT, Tmax, DWI, FLAIR and the anatomy at the slice of largest core."""
    case_montage(scan.case, scan.truth["core"].array, scan.truth["anatomy"].array, path,
                 title=f"{scan.case.id} ({scan.case.subject}), core {scan.info['core_ml']} ml (red)")


#: (key, title, display range, colour map, unit) of the montage's quantitative maps.
MAP_PANELS = (("cbf", "CBF", (0, 80), "viridis", "ml/100 g/min"), ("cbv", "CBV", (0, 6), "viridis", "ml/100 g"),
              ("mtt", "MTT", (0, 15), "magma", "s"), ("tmax", "Tmax", (0, 12), "magma", "s"))


def case_montage(case: Case, core: np.ndarray, anatomy: np.ndarray | None, path: str | os.PathLike, *,
                 title: str = "", mr_name: str = "simulated") -> None:
    """CT, the perfusion maps with colour bars in their units, DWI, FLAIR and the anatomy labels of
    ``case`` (X, Y, Z volumes) at the slice of largest ``core``, the core drawn in red."""
    m = case.modalities
    z = int(np.argmax(core.sum(axis=(0, 1)))) if core.any() else core.shape[2] // 2
    panels: list[tuple] = [("CT", m["ct"].array[..., z], (0, 80), "gray", "HU")]
    panels += [(name, m[key].array[..., z], rng, cmap, unit) for key, name, rng, cmap, unit in MAP_PANELS if key in m]
    for key in ("dwi", "flair"):
        if key in m:
            img = m[key].array[..., z]
            panels.append((f"{mr_name} {key.upper()}", img, (0, float(np.percentile(img, 99.5))), "gray",
                           "signal (a.u.)"))
    if anatomy is not None:
        panels.append(("anatomy labels", anatomy[..., z], (0, 5), "tab10"))
    panel_row(panels, path, label=core[..., z], title=f"{title}, slice {z}" if title else f"slice {z}")


def write_phantom(scans: list[PhantomScan], dest: str | os.PathLike, cfg: PhantomConfig, *, force: bool = False,
                  figures: bool = True) -> Path:
    """Write ``scans`` to ``dest`` (see the module docstring); all or nothing."""

    def extra(root: Path) -> None:
        truth = root / TRUTH_DIR
        for scan in scans:
            for key, vol in scan.truth.items():
                write_volume(vol, truth / scan.case.id / f"{key}.nii.gz")
            if figures:
                case_figure(scan, truth / "figures" / f"{scan.case.id}.png")
        write_json_atomic(truth / "phantom.json", {"summary": cohort_summary(scans),
                                                   "cases": [s.info for s in scans]})
        save_config(cfg, truth / "phantom.yaml")

    return write_cohort([s.case for s in scans], dest, layout="isles2018", force=force, extra=extra)


def read_ground_truth(root: str | os.PathLike, case_id: str, keys: tuple[str, ...] = TRUTH_KEYS) -> dict[str, Volume]:
    """Ground-truth Volumes of one case of a written phantom (lazy)."""
    folder = Path(root) / TRUTH_DIR / case_id
    return {k: read_volume(folder / f"{k}.nii.gz", kind="label" if k in ("core", "penumbra", "anatomy") else "image")
            for k in keys}


__all__ = ["TRUTH_DIR", "case_figure", "cohort_summary", "generate_cohort", "read_ground_truth", "subject_scans", "write_phantom"]
