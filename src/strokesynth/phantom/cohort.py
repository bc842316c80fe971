"""A phantom cohort: subjects, their slabs, and writing it in the ISLES 2018 layout.

Written layout (``ROOT`` is readable by ``open_cohort`` as ISLES 2018)::

    ROOT/
      case_1/SMIR.Brain.XX.O.{CT,CT_4DPWI,CT_CBF,CT_CBV,CT_MTT,CT_Tmax,MR_DWI,MR_Flair,OT}.N/...
      ...
      strokesynth.json          subjects (two slabs of one subject share it)
      groundtruth/case_1/       cbf, cbv, mtt, tmax, delay, artery_delay, core, penumbra, anatomy, mip (.nii.gz)
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
from strokesynth.phantom.lesion_size import draw_target_ml, fit_core_radius, group_position, size_position, slab_core_ml
from strokesynth.phantom.scan import TRUTH_KEYS, PhantomScan, SubjectDraw, simulate_scan, slab_affine
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
    stroke = None if healthy else Stroke.draw(cfg.stroke, rng, mni_atlas().tissue_voxels, z_range, jitter,
                                              group_position(cfg.stroke, cfg.seed, index))
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


#: MNI z range (mm) of the cerebrum, where the seed of a lesion that misses the slab is drawn
BRAIN_Z_MNI = (-40.0, 75.0)


def _primary_slab(slabs: list[tuple[int, float]], seed_z: float, slice_mm: float) -> int:
    """Index of the slab holding MNI z ``seed_z`` (else the nearest one)."""
    return int(np.argmin([max(abs(seed_z - c) - n * slice_mm / 2, 0.0) for n, c in slabs]))


def fit_lesion_size(cfg: PhantomConfig, draw: SubjectDraw, slabs: list[tuple[int, float]],
                    rng: np.random.Generator, index: int) -> dict[str, Any]:
    """Set ``draw.stroke``'s core radius so the slab holding its seed gets a target volume
    (:mod:`strokesynth.phantom.lesion_size`), thickening that slab (in place in ``slabs``) when
    the target does not fit; returns what was asked and estimated, for ``phantom.json``.
    The size group is subject ``index``'s place on the cohort's sequence (``size_position``)."""
    stroke = draw.stroke
    target = draw_target_ml(cfg.stroke, rng, size_position(cfg.stroke, cfg.seed, index))
    k = _primary_slab(slabs, float(stroke.seed[2]), cfg.grid.slice_mm)
    n_z, center = slabs[k]
    thicker = sorted(n for n in set(cfg.grid.slices) if n > n_z)
    while True:
        affine = slab_affine(cfg, n_z, draw.warp.scanner_z_for(center))
        volume = slab_core_ml(stroke, draw, affine, (cfg.grid.size, cfg.grid.size, n_z), cfg.stroke.core_threshold)
        radius, estimate = fit_core_radius(volume, target)
        # a slab too thin for the target (a large core in 2 slices): take the next thicker slab size
        if estimate >= 0.8 * target or not thicker:
            break
        n_z = thicker.pop(0)
    grown = (n_z - slabs[k][0]) * cfg.grid.slice_mm / 2  # keep a second slab adjacent
    slabs[:] = [(n_z, center) if i == k else (n, c + np.sign(c - center) * grown)
                for i, (n, c) in enumerate(slabs)]
    stroke.hypo_radius *= radius / stroke.core_radius
    stroke.core_radius = radius
    return {"target_ml": round(target, 2), "estimated_ml": round(estimate, 2), "slab": k,
            "core_radius_mm": round(radius, 1)}


def subject_scans(cfg: PhantomConfig, index: int, healthy: bool, first_case: int, *,
                  images: bool = True) -> list[PhantomScan]:
    """All scans of subject ``index`` (its own random stream: ``(seed, index)``).

    The stroke's seed lies inside the slabs (unless ``stroke.slab_miss_prob`` draws it 10 mm or
    more above or below them, so a slab holds at most the edge of a large lesion) and, with ``stroke.size_control``, its core radius is fitted to a target volume
    in the slab that holds the seed. ``images=False``: ground truth only (see ``simulate_scan``).
    """
    rng = np.random.default_rng([cfg.seed, index])
    slabs = _slabs(cfg, rng)
    lo = min(c - n * cfg.grid.slice_mm / 2 for n, c in slabs)
    hi = max(c + n * cfg.grid.slice_mm / 2 for n, c in slabs)
    miss = not healthy and rng.uniform() < cfg.stroke.slab_miss_prob
    z_range = (lo, hi)
    if miss:  # the seed 10 mm or more above or below the slabs
        sides = [r for r in ((BRAIN_Z_MNI[0], lo - 10.0), (hi + 10.0, BRAIN_Z_MNI[1])) if r[1] - r[0] > 5.0]
        z_range = sides[int(rng.integers(len(sides)))] if sides else BRAIN_Z_MNI
    draw = draw_subject(cfg, index, healthy, rng, z_range)
    size = None
    if draw.stroke is not None and draw.stroke.core_radius > 0 and cfg.stroke.size_control and not miss:
        size = fit_lesion_size(cfg, draw, slabs, rng, index)
    scans = [simulate_scan(cfg, draw, n_z, center, rng, f"case_{first_case + k}", images=images)
             for k, (n_z, center) in enumerate(slabs)]
    for k, scan in enumerate(scans):
        scan.info["lesion_placement"] = {"missed_slab": miss, "size_fit": size,
                                         "sized_slab": size is not None and k == size["slab"]}
    return scans


def generate_cohort(cfg: PhantomConfig, progress: Callable[[str], Any] | None = None, *,
                    images: bool = True) -> list[PhantomScan]:
    """Simulate ``cfg.subjects`` stroke subjects, then ``cfg.healthy`` healthy ones
    (``images=False``: ground truth only, see ``simulate_scan``)."""
    scans: list[PhantomScan] = []
    for i in range(cfg.subjects + cfg.healthy):
        new = subject_scans(cfg, i, healthy=i >= cfg.subjects, first_case=len(scans) + 1, images=images)
        scans.extend(new)
        if progress is not None:
            progress(f"subject {i + 1}/{cfg.subjects + cfg.healthy}: " + ", ".join(
                f"{s.case.id} ({s.info['slices']} slices, core {s.info['core_ml']} ml)" for s in new))
    return scans


def size_groups(volumes_ml: np.ndarray, bounds: tuple[float, float] = (10.0, 50.0)) -> dict[str, int]:
    """Counts of lesions (volumes > 0) in the groups small < bounds[0] <= medium <= bounds[1] < large."""
    v = np.asarray(volumes_ml, float)
    v = v[v > 0]
    lo, hi = bounds
    return {f"<{lo:g} ml": int((v < lo).sum()), f"{lo:g}-{hi:g} ml": int(((v >= lo) & (v <= hi)).sum()),
            f">{hi:g} ml": int((v > hi).sum())}


def cohort_summary(scans: list[PhantomScan], bounds: tuple[float, float] = (10.0, 50.0)) -> dict[str, Any]:
    """Counts, lesion volumes (ml), size groups and slab sizes of a cohort.

    ``cases_by_size`` counts scans with a core by its volume in the slab; ``subjects_by_size``
    counts, per stroke subject with size control, the slab that holds the seed (the one whose
    volume was drawn from ``stroke.size_group_probs``).
    """
    core = np.array([s.info["core_ml"] for s in scans])
    primary = [s.info["core_ml"] for s in scans if (s.info.get("lesion_placement") or {}).get("sized_slab")]
    return {
        "cases": len(scans),
        "subjects": len({s.case.subject for s in scans}),
        "healthy_subjects": len({s.case.subject for s in scans if s.info["stroke"] is None}),
        "cases_without_core": int((core == 0).sum()),
        "core_ml": {"min": float(core.min()), "median": float(np.median(core)), "max": float(core.max())},
        "slices": sorted({s.info["slices"] for s in scans}),
        "cases_by_size": size_groups(core, bounds),
        "subjects_by_size": size_groups(np.array(primary), bounds),
        "slabs_missing_the_lesion": sum(bool((s.info.get("lesion_placement") or {}).get("missed_slab"))
                                        for s in scans),
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
