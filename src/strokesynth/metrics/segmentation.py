"""Segmentation metrics per case, in physical units, agreeing with MedPy where it has them.

``evaluate_case(pred, ref, spacing)`` gives Dice, Hausdorff distance (maximum, mm), its 95th
percentile HD95 (mm; MedPy's ``hd95``: the 95th percentile of the surface distances of both
directions pooled, as reported by ISLES'22 and BraTS), ASSD (mm; as
MedPy, the mean over the surface voxels of both masks of the distance to the other surface),
precision, recall, absolute volume difference (ml), relative volume error (MedPy's ``ravd``)
and the lesion-wise measures of both challenges (26-connected components): ``lesion_f1`` as
ISLES'22 scores it (a reference lesion is found by any overlap) and ``lesion_f1_isles24`` as
ISLES'24 does (panoptica's one-to-one matching at IoU >= 0.2; never higher than ISLES'22's).

**Empty masks, one rule everywhere**: a value that is undefined for the inputs is NaN (``null``
in JSON) and the case stays in every table; summaries count undefined values instead of
dropping the case.

- both empty: Dice 1, precision 1, recall 1, HD 0, ASSD 0, volume errors 0, lesion F1 1;
- prediction empty, reference not (a miss): Dice 0, recall 0, precision NaN, HD, HD95 and ASSD
  NaN;
- reference empty, prediction not (a false alarm): Dice 0, precision 0, recall NaN, HD, HD95 and
  ASSD NaN, relative volume error NaN.

Distances use MedPy's definitions: surface = mask XOR its erosion with the
face-connected structure (voxels at the array edge count as surface), distances by the
Euclidean distance in mm to the nearest surface voxel of the other mask (k-d tree; MedPy
takes the distance transform, same values). Everything is computed on the bounding box of
both masks plus one voxel, which gives identical values (every voxel and surface voxel lies
inside the box) at a fraction of the cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

SIZE_GROUPS = (("<10 ml", 0.0, 10.0), ("10-50 ml", 10.0, 50.0), (">50 ml", 50.0, math.inf))
METRICS = ("dice", "hd", "hd95", "assd", "precision", "recall", "avd_ml", "rve", "lesion_count_diff", "lesion_f1")
NAN = float("nan")


def _crop(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    both = a | b
    idx = [np.flatnonzero(both.any(axis=tuple(j for j in range(both.ndim) if j != i))) for i in range(both.ndim)]
    sl = tuple(slice(max(int(i[0]) - 1, 0), int(i[-1]) + 2) for i in idx)
    return a[sl], b[sl]


def _surface(mask: np.ndarray) -> np.ndarray:
    footprint = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask ^ ndimage.binary_erosion(mask, structure=footprint, iterations=1)


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice of two boolean masks; 1 when both are empty (the module's rule)."""
    total = int(pred.sum() + ref.sum())
    return 1.0 if total == 0 else 2.0 * float((pred & ref).sum()) / total


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from the surface voxels of ``a`` to the surface of ``b``, and back.

    Both masks must be non-empty. The nearest surface voxel is found with a k-d tree of the
    surface voxels' positions in mm: the same exact Euclidean distances as MedPy's distance
    transform of the whole volume (its values at the surface voxels), several times faster
    because only surface voxels are visited.
    """
    a, b = _crop(a, b)
    sampling = np.asarray(spacing, dtype=np.float64)
    pa = np.argwhere(_surface(a)) * sampling
    pb = np.argwhere(_surface(b)) * sampling
    d_ab = cKDTree(pb).query(pa, k=1)[0]
    d_ba = cKDTree(pa).query(pb, k=1)[0]
    return d_ab, d_ba


Components = tuple[np.ndarray, int, np.ndarray, int]  #: (reference labels, count, predicted labels, count)


def components(pred: np.ndarray, ref: np.ndarray) -> Components:
    """The 26-connected (8 in 2D) components of ``ref`` and ``pred`` (boolean masks of one shape),
    labelled once for :func:`lesion_counts` and :func:`lesion_counts_isles24`."""
    structure = np.ones((3,) * ref.ndim, bool)
    ref_lab, n_ref = ndimage.label(ref, structure)
    pred_lab, n_pred = ndimage.label(pred, structure)
    return ref_lab, int(n_ref), pred_lab, int(n_pred)


def lesion_counts(pred: np.ndarray, ref: np.ndarray, labels: Components | None = None) -> dict[str, int]:
    """Lesion-wise counts with 26-connected components (8 in 2D).

    A reference lesion is found (TP) if any predicted voxel overlaps it, else missed (FN); a
    predicted component overlapping no reference voxel is a false positive (FP). ``labels``:
    :func:`components` of the same masks, when already made.
    """
    ref_lab, n_ref, pred_lab, n_pred = components(pred, ref) if labels is None else labels
    tp = len(np.unique(ref_lab[pred & (ref_lab > 0)]))
    fp = n_pred - len(np.unique(pred_lab[ref & (pred_lab > 0)]))
    return {"ref_lesions": int(n_ref), "pred_lesions": int(n_pred), "tp": tp, "fn": int(n_ref - tp), "fp": int(fp)}


#: IoU at or above which ISLES'24 matches a predicted lesion to a reference lesion (one to one).
ISLES24_MATCH_IOU = 0.2


def lesion_counts_isles24(pred: np.ndarray, ref: np.ndarray, iou: float = ISLES24_MATCH_IOU,
                          labels: Components | None = None) -> dict[str, int]:
    """Lesion-wise counts as ISLES'24 scores them (panoptica: connected components, then
    "naive threshold" matching), with 26-connected components (8 in 2D).

    Every overlapping (reference, predicted) component pair gets its IoU; the pairs are visited
    from the highest IoU down (ties: the higher reference label, then the higher predicted one)
    and a pair with IoU >= ``iou`` is matched when neither component is matched yet. Matched
    pairs are TP, unmatched references FN, unmatched predictions FP. ISLES'22's
    :func:`lesion_counts` instead counts a reference lesion found by any overlap, and a
    prediction as false only if it overlaps nothing: it is never lower. ``labels``:
    :func:`components` of the same masks, when already made.
    """
    ref_lab, n_ref, pred_lab, n_pred = components(pred, ref) if labels is None else labels
    both = (ref_lab > 0) & (pred_lab > 0)
    pairs, inter = np.unique(np.stack([ref_lab[both], pred_lab[both]]), axis=1, return_counts=True)
    ref_size = np.bincount(ref_lab.ravel(), minlength=n_ref + 1)
    pred_size = np.bincount(pred_lab.ravel(), minlength=n_pred + 1)
    scored = []
    for (r, p), n in zip(pairs.T.tolist(), inter.tolist(), strict=True):
        scored.append((n / float(ref_size[r] + pred_size[p] - n), r, p))
    matched_ref: set[int] = set()
    matched_pred: set[int] = set()
    for score, r, p in sorted(scored, reverse=True):
        if score >= iou and r not in matched_ref and p not in matched_pred:
            matched_ref.add(r)
            matched_pred.add(p)
    tp = len(matched_ref)
    return {"ref_lesions": int(n_ref), "pred_lesions": int(n_pred), "tp": tp, "fn": int(n_ref - tp),
            "fp": int(n_pred - tp)}


def lesion_f1(counts: dict[str, int]) -> float:
    """F1 of lesion counts, ``2 TP / (2 TP + FP + FN)`` (panoptica's recognition quality); 1 when
    both masks are empty (the module's rule, and both challenges')."""
    denom = 2 * counts["tp"] + counts["fp"] + counts["fn"]
    return 1.0 if denom == 0 else 2 * counts["tp"] / denom


def evaluate_case(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> dict[str, Any]:
    """All metrics of one case (see the module docstring for units and the empty-mask rule).

    Args:
        pred: predicted mask (any shape; non-zero = lesion).
        ref: reference mask of the same shape.
        spacing: voxel size in mm per axis.
    """
    pred = np.asarray(pred) != 0
    ref = np.asarray(ref) != 0
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference {ref.shape}")
    if len(spacing) != ref.ndim:
        raise ValueError(f"spacing {tuple(spacing)} does not match {ref.ndim} dimensions")
    voxel_ml = float(np.prod(spacing)) / 1000.0
    if pred.any() or ref.any():  # every measure below is unchanged on the masks' bounding box
        pred, ref = _crop(pred, ref)
    n_p, n_r = int(pred.sum()), int(ref.sum())
    inter = int((pred & ref).sum())
    out: dict[str, Any] = {"ref_ml": n_r * voxel_ml, "pred_ml": n_p * voxel_ml}
    out["dice"] = dice(pred, ref)
    out["precision"] = (1.0 if n_r == 0 else NAN) if n_p == 0 else inter / n_p
    out["recall"] = (1.0 if n_p == 0 else NAN) if n_r == 0 else inter / n_r
    if n_p and n_r:
        d_pr, d_rp = surface_distances(pred, ref, spacing)
        out["hd"] = float(max(d_pr.max(), d_rp.max()))
        out["hd95"] = float(np.percentile(np.concatenate([d_pr, d_rp]), 95))  # MedPy's hd95
        out["assd"] = float(np.concatenate([d_pr, d_rp]).mean())  # MedPy: mean over both surfaces' voxels
    else:
        out["hd"] = out["hd95"] = out["assd"] = 0.0 if n_p + n_r == 0 else NAN
    out["avd_ml"] = abs(n_p - n_r) * voxel_ml
    out["rve"] = (n_p - n_r) / n_r if n_r else (0.0 if n_p == 0 else NAN)
    labels = components(pred, ref)
    counts = lesion_counts(pred, ref, labels)
    out["lesion_count_diff"] = abs(counts["pred_lesions"] - counts["ref_lesions"])
    out["lesion_f1"] = lesion_f1(counts)  # ISLES'22: any overlap finds a lesion
    out["lesion_f1_isles24"] = lesion_f1(lesion_counts_isles24(pred, ref, labels=labels))  # one to one, IoU >= 0.2
    out.update(counts)
    return out


def size_group(ref_ml: float) -> str:
    """The lesion-size group (Wang et al.) of a reference volume in ml: < 10, 10-50 (inclusive), > 50."""
    if ref_ml < 10.0:
        return SIZE_GROUPS[0][0]
    return SIZE_GROUPS[1][0] if ref_ml <= 50.0 else SIZE_GROUPS[2][0]


def summarize(rows: Iterable[dict[str, Any]], metrics: Sequence[str] = METRICS) -> dict[str, dict[str, float]]:
    """Mean, SD and counts of each metric over cases; NaN values are counted, not averaged."""
    rows = list(rows)
    out = {}
    for m in metrics:
        vals = np.array([r[m] for r in rows if m in r], dtype=np.float64)
        ok = vals[~np.isnan(vals)]
        out[m] = {"mean": float(ok.mean()) if ok.size else NAN, "sd": float(ok.std(ddof=1)) if ok.size > 1 else NAN,
                  "n": int(ok.size), "undefined": int(vals.size - ok.size)}
    return out


def summarize_by_size(rows: Iterable[dict[str, Any]], metrics: Sequence[str] = METRICS) -> dict[str, dict]:
    """:func:`summarize` per reference lesion-size group (cases without a lesion go to '<10 ml')."""
    rows = list(rows)
    return {name: summarize([r for r in rows if size_group(r["ref_ml"]) == name], metrics)
            for name, _, _ in SIZE_GROUPS}
