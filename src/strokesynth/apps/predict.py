"""Apply trained models to new cases: mask, probability, core volume and overlay per case.

Segmenters take their input maps; a pseudo-DWI model (Wang, Song et al.) takes the perfusion
maps and the raw 4D CTP (its CTA features), needs no DWI, and also writes the pseudo-DWI it
segmented (``dwi_pseudo.nii.gz``, normalised DWI units, the case's affine).

A case that brings only its CT and raw 4D CTP gets its perfusion maps computed first
(:func:`~strokesynth.perfusion.case_maps.with_perfusion_maps`, oSVD by default); every case with
a Tmax map also gets the Tmax > 6 s hypoperfusion mask and the core / hypoperfusion mismatch.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from strokesynth._fs import resumable_dir, write_json_atomic, write_text_atomic
from strokesynth.data.arrays import check_labels
from strokesynth.data.case import LABEL_KEY, Case
from strokesynth.data.modalities import get_modality
from strokesynth.data.volume import Volume
from strokesynth.engine.system import SYSTEMS, System
from strokesynth.errors import ConfigError, DataError
from strokesynth.io import open_cohort
from strokesynth.io.nifti import write_volume
from strokesynth.perfusion.case_maps import (
    MAP_KEYS,
    TMAX_HYPOPERFUSION_S,
    ComputedMaps,
    check_raw_ctp,
    hypoperfusion,
    mismatch,
    with_perfusion_maps,
)
from strokesynth.perfusion.maps import PerfusionConfig
from strokesynth.plots import input_function_figure, panel_row
from strokesynth.systems.pseudo_dwi import PSEUDO, PseudoDwiConfig
from strokesynth.systems.segmenter import TrainConfig

Model = tuple[torch.nn.Module, TrainConfig | PseudoDwiConfig]


def predictor_class(cfg: Any) -> type[System]:
    """The registered system that segments new cases with a config of ``cfg``'s type."""
    found = [c for c in (SYSTEMS.get(n) for n in SYSTEMS.names()) if c.predicts and c.config_class is type(cfg)]
    if not found:
        raise ConfigError("model", f"no system that segments new cases takes a {type(cfg).__name__}")
    return found[0]


def required_modalities(cfg: Any) -> list[str]:
    """The modalities a new case needs for this model (a pseudo-DWI model: maps + raw 4D CTP)."""
    return predictor_class(cfg).case_inputs(cfg)


def _probability(model: Any, cfg: Any, case: Case) -> tuple[np.ndarray, Volume | None]:
    """Lesion probability (X, Y, Z) of one case, and the pseudo-DWI where the model makes one."""
    return predictor_class(cfg).case_probability(model, cfg, case)


def load_predictor(path: str | os.PathLike) -> Model:
    """A trained model from a run folder (its first fold's kept model), a pseudo-DWI recipe row
    folder (``rows/<row>``) or a checkpoint file: a segmenter or a pseudo-DWI system."""
    from strokesynth.engine.checkpoint import load_system
    from strokesynth.recipes.cv import load_model

    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such run folder or checkpoint file")
    if path.is_dir():
        folds = sorted(path.glob("fold_*/best.pt"))
        if (path / "config.yaml").exists() and folds:
            try:
                return load_model(path)
            except (DataError, ConfigError):
                path = folds[0]
        elif not folds:
            raise DataError(path, "no fold_*/best.pt in this folder (is it a finished run?)")
        else:
            path = folds[0]
    system = load_system(path)
    if not system.predicts:
        raise DataError(path, f"holds a {system.name} system, which does not segment new cases")
    if system.name == "segmenter":  # its run's config.yaml is checked against the checkpoint there
        return load_model(path)
    return system.predictor(), system.config


def open_cases(source: Path, require: list[str]) -> list[Case]:
    """The cases of a data set folder, or of one case (or subject) folder inside a data set.

    A case folder is found by opening the folders above it (up to three levels: an ISLES'22
    session sits two below the root) and keeping the cases stored under ``source``.

    Raises:
        DataError: one line saying what ``source`` is missing (not a layout's guess at it).
    """
    if not source.exists():
        raise DataError(source, "no such data set or case folder")
    try:
        return open_cohort(source, require=require).cases
    except DataError as first:
        problem = first
    target = source.resolve()
    for root in list(target.parents)[:3]:
        try:
            cohort = open_cohort(root, strict=False)
        except DataError:
            continue
        inside = [c for c in cohort.cases if c.where and (Path(c.where).resolve() == target
                                                          or target in Path(c.where).resolve().parents)]
        if inside:
            for case in inside:
                case.require(require)
            return inside
        mine = [p for p in cohort.problems if str(target) in p or str(source) in p]
        if mine:
            raise DataError(None, mine[0])
    if problem.where and target in Path(problem.where).resolve().parents:
        raise problem  # a data set whose case (named in the message) is broken
    raise DataError(source, f"not a data set and not a case folder inside one ({problem.problem})")


#: relative difference of in-plane pixel size above which predict resamples a case
PIXEL_TOLERANCE = 0.05


def to_training_pixels(case: Case, cfg: TrainConfig | PseudoDwiConfig) -> tuple[Case, tuple[float, float] | None]:
    """``case`` resampled in-plane to the model's recorded training pixel size (``data.pixel_mm``),
    and the zoom factors used; the case itself and ``None`` when no resampling is needed.

    Images are interpolated linearly, the lesion mask by nearest neighbour; the affine's in-plane
    columns are scaled so every voxel keeps its position in mm (up to half a pixel at the edge).
    """
    from scipy import ndimage

    pixel = float(getattr(cfg.data, "pixel_mm", 0.0) or 0.0)
    sx, sy = case.spacing[:2]
    if pixel <= 0 or (abs(sx - pixel) <= PIXEL_TOLERANCE * pixel and abs(sy - pixel) <= PIXEL_TOLERANCE * pixel):
        return case, None
    fx, fy = sx / pixel, sy / pixel
    mods = {}
    for key, vol in case.modalities.items():
        arr = np.asarray(vol.array)
        label = key == LABEL_KEY
        vx, vy = vol.spacing[:2]  # a volume on its own grid keeps its own pixel size
        factors = (vx / pixel, vy / pixel) + (1.0,) * (arr.ndim - 2)
        out = ndimage.zoom(arr.astype(np.float32), factors, order=0 if label else 1, grid_mode=True, mode="nearest")
        aff = np.array(vol.affine, float)
        aff[:3, 0] *= arr.shape[0] / out.shape[0]
        aff[:3, 1] *= arr.shape[1] / out.shape[1]
        mods[key] = Volume(out.astype(arr.dtype if label else np.float32), aff,
                           **({"kind": "label"} if label else {}))
    return Case(case.id, case.subject, mods, own_grid=case.own_grid, meta=dict(case.meta), where=case.where), (fx, fy)


def from_training_pixels(prob: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A probability map ``(X', Y', Z)`` on the resampled grid, back on the case's ``(X, Y, Z)``."""
    from scipy import ndimage

    x, y = shape[:2]
    return ndimage.zoom(prob, (x / prob.shape[0], y / prob.shape[1], 1.0), order=1, grid_mode=True,
                        mode="nearest").clip(0.0, 1.0)


def grid_check(case: Case, cfg: TrainConfig | PseudoDwiConfig) -> str | None:
    """Refuse a case the model would see cut, or return a note when it is padded.

    With ``pad_crop`` a case larger in-plane than the model's training grid would be centre-cropped
    (probability 0 outside): refused. A smaller one is padded with background, which keeps every
    voxel but shows the network a larger field of view than in training: allowed, with a note.
    ``resample`` models take any grid (the field of view is then the model's concern).

    Raises:
        DataError: naming the case and both grids.
    """
    if cfg.data.mode != "pad_crop":
        return None
    have, want = tuple(case.spatial_shape[:2]), tuple(cfg.data.size)
    if any(h > w for h, w in zip(have, want, strict=True)):
        raise DataError(case.where or case.id, f"in-plane grid {have[0]}x{have[1]} px is larger than the model's "
                                               f"training grid {want[0]}x{want[1]} (pad_crop would cut it); resample "
                                               "the case to the training spacing or use a model trained at this size")
    if have != want:
        return (f"note: {case.id}: {have[0]}x{have[1]} px padded to the model's {want[0]}x{want[1]} training grid "
                "(every voxel kept; the network sees more background than in training)")
    return None


#: columns of ``volumes.csv`` (and keys of each ``volumes.json`` row)
SUMMARY_COLUMNS = ("case", "core_ml", "hypoperfusion_ml", "mismatch_ml", "mismatch_ratio", "maps", "models",
                   "brain_ml", "outside_brain_ml", "flags")

#: Share of the brain above which a predicted core is flagged as implausible.
CORE_BRAIN_SHARE = 0.5


def case_brain(case: Case, seen: Case, zoom: tuple[float, float] | None, computed: ComputedMaps
               ) -> tuple[np.ndarray | None, str]:
    """The brain mask ``(X, Y, Z)`` a case's core is kept within, and where it came from.

    From the non-contrast CT (:func:`~strokesynth.perfusion.maps.brain_mask`), else the perfusion
    analysis of the raw CTP, else the voxels where the given perfusion maps are non-zero (vendor
    maps are 0 outside the brain); ``None`` when the case has none of these. The CT and the maps
    are read on ``seen``, the case as a model sees it (:func:`to_training_pixels`, which gave
    ``zoom``), and the mask brought back, so a case and its resampled twin get the same brain; it
    is dilated by 2 voxels in-plane there (the masks are eroded at the cortex)."""
    from scipy import ndimage

    from strokesynth.perfusion.maps import brain_mask

    grow = np.ones((3, 3, 1), bool)
    maps = [k for k in MAP_KEYS if k in seen]
    if "ct" in seen and seen["ct"].ndim == 3:
        brain, source = brain_mask(np.asarray(seen["ct"].array, np.float32), PerfusionConfig()), "CT"
    elif computed.brain is not None:
        brain = ndimage.binary_dilation(np.asarray(computed.brain, bool), structure=grow, iterations=2)
        return (brain, "perfusion analysis") if brain.any() else (None, "none")
    elif maps:
        brain, source = np.any([np.asarray(seen[k].array) != 0 for k in maps], axis=0), "non-zero maps"
    else:
        return None, "none"
    if not brain.any():
        return None, "none"
    brain = ndimage.binary_dilation(brain, structure=grow, iterations=2)
    if zoom is not None:
        brain = from_training_pixels(brain.astype(np.float32), case.spatial_shape) > 0.5
    return brain, source


def core_flags(row: dict[str, Any]) -> list[str]:
    """Plausibility flags of one predicted case (``volumes.json`` row): a core marked outside the
    brain (removed), a core larger than :data:`CORE_BRAIN_SHARE` of the brain, no brain mask."""
    flags = []
    if row.get("brain_ml") is None:
        flags.append("no brain mask (no CT, raw CTP or perfusion maps): the core is not limited to the brain")
    if row.get("outside_brain_ml"):
        flags.append(f"the model marked {row['outside_brain_ml']:.1f} ml outside the brain ({row['brain_mask']}); "
                     "removed from the core")
    if row.get("brain_ml") and row["core_ml"] > CORE_BRAIN_SHARE * row["brain_ml"]:
        flags.append(f"core {row['core_ml']:.1f} ml is more than {CORE_BRAIN_SHARE:.0%} of the brain "
                     f"({row['brain_ml']:.1f} ml): implausible, check the model and the input")
    return flags


def _summary_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else "; ".join(row[k]) if isinstance(row[k], list) else row[k])
                         for k in SUMMARY_COLUMNS})
    return buf.getvalue()


def _needed_maps(case: Case, mods: list[str]) -> list[str]:
    """The maps to make sure ``case`` has: the models' (and, with a raw CTP, Tmax for the hypoperfusion)."""
    return list(MAP_KEYS) if "ctp" in case else [m for m in mods if m in MAP_KEYS]


def _prepare(case: Case, mods: list[str], perfusion: PerfusionConfig | None,
             echo: Callable[[str], Any]) -> tuple[Case, ComputedMaps]:
    """``case`` with the perfusion maps it needs computed from its raw CTP where absent."""
    case, computed = with_perfusion_maps(case, _needed_maps(case, mods), perfusion)
    if computed.keys:
        echo(f"{case.id}: {', '.join(computed.keys)} computed from the raw 4D CTP ({computed.method}, "
             f"{computed.info['frames']} frames at {computed.info['dt_s']:g} s, bolus window frames "
             f"{computed.info['bolus_window'][0]}-{computed.info['bolus_window'][1]}) in {computed.seconds:.1f} s")
    return case, computed


def _settings(models: list[Model], threshold: float, perfusion: PerfusionConfig | None, tmax_threshold_s: float,
              source: str | os.PathLike) -> dict[str, Any]:
    """What decides a batch's results: a resumed batch must have the same."""
    from strokesynth.config import to_dict

    models_cfg = []
    for _, cfg in models:
        d = to_dict(cfg)
        d.get("run", {}).pop("device", None)  # where it runs does not change what it predicts
        models_cfg.append(d)
    settings = {"source": str(Path(source).resolve()), "threshold": threshold, "tmax_threshold_s": tmax_threshold_s,
                "perfusion": to_dict(perfusion or PerfusionConfig()), "models": models_cfg}
    return json.loads(json.dumps(settings))  # as it reads back from predict.json


def predict_cases(models: list[Model], source: str | os.PathLike,
                  out: str | os.PathLike, *, force: bool = False, threshold: float | None = None,
                  perfusion: PerfusionConfig | None = None, tmax_threshold_s: float = TMAX_HYPOPERFUSION_S,
                  case_page: Callable[[Path, dict[str, Any]], Any] | None = None, resume: bool = False,
                  echo: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    """Average the lesion probabilities of ``models`` on every case of ``source``; write the results.

    ``source`` is a data set folder (any layout) or a single case folder of one. All models
    must take the same input modalities. A case without some of the perfusion maps the models
    take, but with its raw 4D CTP (``ctp``), gets them computed with ``perfusion`` (default
    :class:`PerfusionConfig`: oSVD; the CTP's header is checked for every case before anything is
    written, the analysis runs case by case); the computed maps are written too.

    For each case ``out/<case>/`` receives ``mask.nii.gz`` and ``prob.nii.gz`` (the input's
    affine), ``overlay.png``, and where a Tmax map exists ``hypoperfusion.nii.gz`` (Tmax above
    ``tmax_threshold_s``); ``case_page(folder, row)``, when given, adds a page per case. ``out/
    volumes.json`` and ``out/volumes.csv`` list per case the core, hypoperfusion and mismatch
    volumes (ml) and the mismatch ratio.

    The batch is resumable: cases are finished one by one in a hidden staging folder beside
    ``out`` (each appears whole or not at all), which becomes ``out`` when every case is done; after
    a kill or an error, ``resume=True`` keeps the finished cases and does the rest (with the same
    models, data and settings, or it refuses).
    """
    if not models:
        raise ConfigError("models", "no model given")
    mods = required_modalities(models[0][1])
    for _, cfg in models[1:]:
        if required_modalities(cfg) != mods:
            raise ConfigError("models", f"models take different inputs ({required_modalities(cfg)} vs {mods})")
    cases = open_cases(Path(source), [m for m in mods if m not in MAP_KEYS])
    check_labels(cases)  # a reference mask, when present, is shown and measured: it must be 0/1
    for case in cases:  # every check that needs no analysis, before anything is written
        check_raw_ctp(case, _needed_maps(case, mods), perfusion)
        for _, cfg in models:
            seen, zoom = to_training_pixels(case, cfg)
            if zoom is not None:
                echo(f"note: {case.id}: in-plane pixels {case.spacing[0]:.3g} x {case.spacing[1]:.3g} mm resampled to "
                     f"the model's training {cfg.data.pixel_mm:.3g} mm (and the result back)")
            note = grid_check(seen, cfg)
            if note:
                echo(note)
    thr = models[0][1].threshold if threshold is None else threshold
    settings = _settings(models, thr, perfusion, tmax_threshold_s, source)
    results = []
    with resumable_dir(out, force=force, resume=resume) as staging:
        manifest = staging / "predict.json"
        if manifest.exists() and json.loads(manifest.read_text(encoding="utf-8")) != settings:
            raise ConfigError("--resume", f"the unfinished batch in {staging} was started with other models, data "
                                          "or settings; run without --resume to start over")
        write_json_atomic(manifest, settings)
        for n, case in enumerate(cases, 1):
            done = staging / case.id / "volumes.json"
            if done.exists():
                results.append(json.loads(done.read_text(encoding="utf-8")))
                echo(f"[{n}/{len(cases)}] {case.id}: done earlier (resumed)")
                continue
            tmp = staging / f".{case.id}.part"
            if tmp.exists():
                shutil.rmtree(tmp)
            case, computed = _prepare(case, mods, perfusion, echo)
            probs, pseudos = [], []
            first_view = None  # the case as the first model saw it: the brain mask is read there
            for model, cfg in models:
                seen, zoom = to_training_pixels(case, cfg)
                first_view = first_view or (seen, zoom)
                p, pseudo = _probability(model, cfg, seen)
                if zoom is not None:
                    p = from_training_pixels(p, case.spatial_shape)
                    pseudo = None if pseudo is None else Volume(from_training_pixels(pseudo.array, case.spatial_shape),
                                                                case.affine)
                probs.append(p)
                if pseudo is not None:
                    pseudos.append(pseudo.array)
            folder = tmp
            if pseudos:
                write_volume(Volume(np.mean(pseudos, axis=0).astype(np.float32), case.affine), folder / f"{PSEUDO}.nii.gz")
            for key in computed.keys:
                write_volume(case[key], folder / "maps" / f"{key}.nii.gz")
            if computed.keys:
                if computed.aif is not None:
                    input_function_figure(computed.aif, computed.dt, folder / "maps" / "aif.png", vof=computed.vof,
                                          title=f"{case.id}: arterial input function")
                write_json_atomic(folder / "maps" / "perfusion.json", {"method": computed.method, "computed": computed.keys,
                                                                       "seconds": round(computed.seconds, 2),
                                                                       **computed.info})
            prob = np.mean(probs, axis=0).astype(np.float32)
            affine = case.affine
            voxel_ml = float(np.prod(case.spacing)) / 1000.0
            brain, brain_from = case_brain(case, *first_view, computed)
            first_view = None
            outside_ml = 0.0
            if brain is not None:  # the core lies in the brain: what a model marks outside it is removed, and said
                outside_ml = float(((prob > thr) & ~brain).sum()) * voxel_ml
                prob = np.where(brain, prob, np.float32(0.0)).astype(np.float32)
            mask = prob > thr
            write_volume(Volume(prob, affine), folder / "prob.nii.gz")
            write_volume(Volume(mask.astype(np.uint8), affine, kind="label"), folder / "mask.nii.gz")
            ml = float(mask.sum()) * voxel_ml
            row: dict[str, Any] = {"case": case.id, "core_ml": round(ml, 3), "hypoperfusion_ml": None,
                                   "mismatch_ml": None, "mismatch_ratio": None,
                                   "maps": "computed" if computed.keys else "given", "models": len(models),
                                   "brain_ml": None if brain is None else round(float(brain.sum()) * voxel_ml, 3),
                                   "brain_mask": brain_from, "outside_brain_ml": round(outside_ml, 3)}
            row["flags"] = core_flags(row)
            for flag in row["flags"]:
                echo(f"warning: {case.id}: {flag}")
            hypo = None
            if "tmax" in case:
                hypo = hypoperfusion(case["tmax"].array, tmax_threshold_s)
                write_volume(Volume(hypo.astype(np.uint8), affine, kind="label"), folder / "hypoperfusion.nii.gz")
                row["hypoperfusion_ml"] = round(float(hypo.sum()) * voxel_ml, 3)
                row.update(mismatch(ml, row["hypoperfusion_ml"]))
            z = int(np.argmax(mask.sum(axis=(0, 1)))) if mask.any() else case.spatial_shape[2] // 2
            ref = case.label.array[..., z] if case.label is not None else None
            panels = [(k.upper(), case[k].array[..., z], tuple(np.percentile(case[k].array[..., z], [1, 99])), "gray",
                       get_modality(k).unit)
                      for k in [m for m in mods if m != "ctp"][:3]]
            panels.append(("core probability", prob[..., z], (0.0, 1.0), "magma", "probability"))
            if hypo is not None:
                panels.append((f"Tmax > {tmax_threshold_s:g} s", hypo[..., z].astype(np.float32), (0.0, 1.0), "Blues",
                               "hypoperfused"))
            panel_row(panels, folder / "overlay.png", label=mask[..., z],
                      title=f"{case.id} z={z}: predicted core {ml:.1f} ml (red)"
                      + ("" if ref is None else f", reference {float((case.label.array > 0).sum()) * voxel_ml:.1f} ml"))
            if case_page is not None:
                case_page(folder, {**row, "threshold": thr, "tmax_threshold_s": tmax_threshold_s, "z": z,
                                   "perfusion": {"method": computed.method, "seconds": round(computed.seconds, 2),
                                                 **computed.info} if computed.keys else None})
            write_json_atomic(folder / "volumes.json", row)
            os.replace(tmp, staging / case.id)  # the case appears whole or not at all
            results.append(row)
            hyp = "" if row["hypoperfusion_ml"] is None else (
                f", Tmax > {tmax_threshold_s:g} s {row['hypoperfusion_ml']:.1f} ml, mismatch {row['mismatch_ml']:.1f} ml"
                + ("" if row["mismatch_ratio"] is None else f" (ratio {row['mismatch_ratio']:.1f})"))
            echo(f"[{n}/{len(cases)}] {case.id}: core {ml:.1f} ml{hyp}")
        write_json_atomic(staging / "volumes.json", results)
        write_text_atomic(staging / "volumes.csv", _summary_csv(results))
    return results
