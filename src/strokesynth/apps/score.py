"""Score any folder of predicted masks against a data set's reference lesions.

Predictions made outside strokesynth (nnU-Net, another toolkit, a commercial package) are
judged by the same metrics and tables as strokesynth's own models: scans with a lesion and
lesion-free scans apart, the CBF-threshold and Tmax > 6 s baselines on the same scans where the
reference has those maps, and paired comparisons (Wilcoxon signed-rank) between folders on the scans they share.

A predictions folder may hold, for each case id of the reference data set:

- ``CASE.nii.gz`` (or ``.nii``): nnU-Net's ``predict`` output and its ``fold_K/validation/``
  folder (other files there, ``summary.json``, ``.npz``, ``.pkl``, are ignored), or any tool
  that names a mask by its case;
- ``CASE/mask.nii.gz``: strokesynth's ``predict`` output and a run's ``predictions/`` folder
  (a run folder itself is accepted and its ``predictions/`` used).

Every prediction must be on its reference's grid (shape and affine, checked case by case) and
hold only 0 and 1. A prediction with no reference case is an error; reference cases without a
prediction are named and left out of that folder's scores (nnU-Net's validation folders hold
one fold each).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from strokesynth._fs import atomic_dir
from strokesynth.data.arrays import binary_label
from strokesynth.data.case import Case
from strokesynth.errors import ConfigError, DataError, OutputError
from strokesynth.io import open_cohort
from strokesynth.io.nifti import is_nifti_name, read_volume, strip_nifti_suffix
from strokesynth.metrics import evaluate_case
from strokesynth.metrics.baselines import BASELINES, PERFUSION_KEYS, baseline_masks
from strokesynth.metrics.paired import paired_rows
from strokesynth.metrics.tables import EXTERNAL, format_table, summaries
from strokesynth.runs import RunDir

#: How far (mm) a prediction's affine may be from its reference's; NIfTI writers round to float32.
AFFINE_TOL_MM = 1e-3
PAIRED_METRICS = ("dice", "hd95", "avd_ml")


def find_predictions(folder: str | os.PathLike) -> dict[str, Path]:
    """Case id -> mask file of a predictions folder (see the module docstring for the layouts)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "predictions folder not found")
    if (folder / "predictions").is_dir() and (folder / "config.yaml").is_file():
        folder = folder / "predictions"  # a strokesynth run folder
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and is_nifti_name(path):
            found[strip_nifti_suffix(path.name)] = path
        elif path.is_dir():
            masks = [p for p in (path / "mask.nii.gz", path / "mask.nii") if p.is_file()]
            if masks:
                found[path.name] = masks[0]
    if not found:
        if (folder / "validation").is_dir():
            return find_predictions(folder / "validation")
        raise DataError(folder, "holds no predictions (CASE.nii.gz files or CASE/mask.nii.gz folders)")
    return found


def load_prediction(path: Path, case: Case) -> np.ndarray:
    """The boolean mask in ``path``, checked against ``case``'s reference lesion grid."""
    ref = case.label
    vol = read_volume(path)
    if tuple(vol.shape) != tuple(ref.shape):
        raise DataError(path, f"shape {tuple(vol.shape)} differs from the reference lesion's {tuple(ref.shape)} "
                              f"(case {case.id})")
    diff = float(np.abs(np.asarray(vol.affine) - np.asarray(ref.affine)).max())
    if diff > AFFINE_TOL_MM:
        raise DataError(path, f"affine differs from the reference lesion's by up to {diff:.3g} mm (case {case.id}); "
                              "resample the prediction onto the reference grid")
    array = np.asarray(vol.array)
    if not np.all(np.isfinite(array)):
        raise DataError(path, "holds NaN or Inf")
    values = np.unique(array)
    bad = [v for v in values.tolist() if v not in (0, 1)]
    if bad:
        raise DataError(path, f"holds values {bad[:5]} besides 0 and 1 (give binary masks, not probabilities)")
    return array == 1


def _labels(folders: Sequence[Path], names: Sequence[str] | None) -> list[str]:
    if names:
        if len(names) != len(folders):
            raise ConfigError("--name", f"give one name per predictions folder ({len(folders)}), got {len(names)}")
        labels = list(names)
    else:
        labels = []
        for f in folders:
            parts = [p for p in Path(f).resolve().parts if p]
            label = parts[-1] if parts[-1] not in ("validation", "predictions") else "/".join(parts[-2:])
            labels.append(label)
    if len(set(labels)) != len(labels) or set(labels) & set(BASELINES):
        raise ConfigError("--name", f"method names must be distinct: {labels}")
    return labels


def score_predictions(folders: Sequence[str | os.PathLike], reference: str | os.PathLike, *,
                      out: str | os.PathLike | None = None, layout: str = "auto", names: Sequence[str] | None = None,
                      force: bool = False, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Score every predictions folder against ``reference`` (a data set with lesion masks).

    Everything is read and checked before ``out`` is touched; ``out`` then receives
    ``cases.csv``, ``evaluation.json`` (the :func:`~strokesynth.metrics.tables.summaries` of all
    methods, the paired comparisons and the cases each folder lacks) and ``table.txt``, all at once.

    Returns:
        The evaluation dictionary written to ``evaluation.json``.
    """
    folders = [Path(f) for f in folders]
    if out is not None and Path(out).is_dir() and any(Path(out).iterdir()) and not force:
        raise OutputError(out, "output folder exists and is not empty (use --force to replace it)")
    if not folders:
        raise ConfigError("--predictions", "give at least one predictions folder")
    labels = _labels(folders, names)
    cohort = open_cohort(reference, layout=layout)
    by_id = {c.id: c for c in cohort.cases if c.label is not None}
    if not by_id:
        raise DataError(cohort.root, "no case has a reference lesion mask to score against")
    found = [find_predictions(f) for f in folders]
    for folder, preds in zip(folders, found, strict=True):
        unknown = sorted(set(preds) - set(by_id))
        if unknown:
            raise DataError(preds[unknown[0]], f"no reference case {unknown[0]!r} in {cohort.root} "
                                               f"({len(unknown)} prediction(s) of {folder} match no case)")
    rows: list[dict[str, Any]] = []
    missing: dict[str, list[str]] = {}
    for case_id in sorted(set().union(*(set(p) for p in found))):
        case = by_id[case_id]
        ref = binary_label(case) > 0
        lesion = bool(ref.any())
        preds = [(label, load_prediction(p[case_id], case)) for label, p in zip(labels, found, strict=True)
                 if case_id in p]
        preds.extend(baseline_masks({k: case[k].array for k in PERFUSION_KEYS if k in case}))
        for method, mask in preds:
            m = evaluate_case(mask, ref, case.spacing)
            extra = {} if lesion else {"fp_ml": m["pred_ml"], "empty_ok": float(not mask.any())}
            rows.append({"method": method, "fold": 0, "case": case_id, "lesion": lesion, **m, **extra})
    for label, preds in zip(labels, found, strict=True):
        lacking = sorted(set(by_id) - set(preds))
        if lacking:
            missing[label] = lacking
    summary = summaries(rows, EXTERNAL)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    comparisons = []
    for i, b in enumerate(labels):
        pairs = [(labels[0], b)] if i else []
        pairs = [(base, b) for base in BASELINES if base in methods] + pairs
        for a, bb in pairs:
            comparisons.extend(paired_rows(rows, a, bb, metric) for metric in PAIRED_METRICS)
    evaluation = {"reference": str(cohort.root), "folders": dict(zip(labels, map(str, folders), strict=True)),
                  "missing": missing, "summary": summary, "paired": comparisons}
    lines = [format_table(summary)]
    for label, lacking in missing.items():
        lines.append(f"{label}: no prediction for {len(lacking)} of {len(by_id)} reference case(s) "
                     f"({', '.join(lacking[:5])}{', ...' if len(lacking) > 5 else ''}); scored without them")
    for p in comparisons:
        lines.append(f"paired {p['b']} - {p['a']}, {p['metric']}: mean {p['mean_diff']:+.3f} over {p['cases']} "
                     f"lesion scan(s), better {p['better']}, worse {p['worse']}, Wilcoxon p = {p['wilcoxon_p']:.3g}")
    text = "\n".join(lines)
    if out is not None:
        with atomic_dir(out, force=force) as tmp:
            run = RunDir(tmp)
            run.save_table("cases.csv", rows)
            run.save_json("evaluation.json", evaluation)
            (tmp / "table.txt").write_text(text + "\n", encoding="utf-8")
    echo(text)
    return evaluation
