"""Per-case rows and the tables of a cross-validation: scans with a lesion and lesion-free scans
apart, the CBF-threshold and Tmax > 6 s baselines on the same scans, the selection protocol named.

Scores are reported for scans with a lesion and lesion-free scans apart: overlap and distance
metrics on the former (Dice, HD, ASSD, precision, recall, volume error, lesion F1), the
false-positive volume and the share of correctly empty predictions on the latter.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from strokesynth.data.case import Case
from strokesynth.metrics.baselines import PERFUSION_KEYS, baseline_masks
from strokesynth.metrics.segmentation import METRICS, evaluate_case, summarize, summarize_by_size

#: Which data chose each fold's checkpoint (the run's ``selection``; see :mod:`strokesynth.engine.protocol`).
PROTOCOLS = {
    "inner": "checkpoint chosen on an inner validation split of each fold's training subjects (honest)",
    "last": "last-epoch checkpoint, no choice made on any data (honest)",
    "heldout": "checkpoint chosen on the scored fold itself, as in the papers (OPTIMISTIC: scores are biased upwards)",
}

TABLE_METRICS = ("dice", "hd", "hd95", "assd", "precision", "recall", "avd_ml", "lesion_f1", "lesion_f1_isles24")
LESION_METRICS = ("dice", "hd", "hd95", "assd", "precision", "recall", "avd_ml", "rve", "lesion_f1",
                  "lesion_f1_isles24")
#: What the two lesion-wise F1 columns of every table mean.
F1_LEGEND = ("lesion_f1: ISLES'22's (a reference lesion is found by any overlap); lesion_f1_isles24: ISLES'24's "
             "(components matched one to one at IoU >= 0.2)")
EMPTY_METRICS = ("fp_ml", "empty_ok")

def case_rows(method: str, fold: int, case: Case, mask: np.ndarray) -> list[dict[str, Any]]:
    """Metrics of ``mask`` on ``case``, and of the baselines its maps allow (the CBF-threshold core
    when the case has CBF, the Tmax > 6 s region when it has Tmax; :func:`baseline_masks`)."""
    ref = case.label.array > 0
    preds = [(method, mask), *baseline_masks({k: case[k].array for k in PERFUSION_KEYS if k in case})]
    rows = []
    for name, pred in preds:
        m = evaluate_case(pred, ref, case.spacing)
        lesion = bool(ref.any())
        extra = {} if lesion else {"fp_ml": m["pred_ml"], "empty_ok": float(not pred.any())}
        rows.append({"method": name, "fold": fold, "case": case.id, "lesion": lesion, **m, **extra})
    return rows


#: The selection line of tables of predictions made elsewhere (``strokesynth evaluate --predictions``).
EXTERNAL = "external"
EXTERNAL_TEXT = "predictions made outside this run; how their models were chosen is not known here"


def summaries(rows: list[dict[str, Any]], protocol: str = "inner") -> dict[str, Any]:
    """Per method: ``lesion`` (scans with a lesion: overlap/distance metrics), ``empty`` (lesion-free
    scans: false-positive ml, share predicted empty), ``overall`` (all scans), ``by_fold`` and
    ``by_size`` (lesion scans per size group), plus the selection ``protocol``."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    les = [r for r in rows if r["lesion"]]
    emp = [r for r in rows if not r["lesion"]]
    return {
        "protocol": protocol,
        "protocol_text": EXTERNAL_TEXT if protocol == EXTERNAL else PROTOCOLS[protocol],
        "lesion": {m: summarize([r for r in les if r["method"] == m], LESION_METRICS) for m in methods},
        "empty": {m: summarize([r for r in emp if r["method"] == m], EMPTY_METRICS) for m in methods},
        "overall": {m: summarize([r for r in rows if r["method"] == m], METRICS) for m in methods},
        "by_fold": {m: {f: summarize([r for r in les if r["method"] == m and r["fold"] == f], LESION_METRICS)
                        for f in sorted({r["fold"] for r in rows})} for m in methods},
        "by_size": {m: summarize_by_size([r for r in les if r["method"] == m], LESION_METRICS) for m in methods},
        "scans": {"lesion": len({r["case"] for r in les}), "empty": len({r["case"] for r in emp})},
    }


def _cell(v: dict[str, float], digits: int = 3) -> str:
    if np.isnan(v["mean"]):
        cell = "-"
    elif not np.isnan(v["sd"]):
        cell = f"{v['mean']:.{digits}f}±{v['sd']:.{digits}f}"
    else:
        cell = f"{v['mean']:.{digits}f}"
    return cell + (f" [{v['undefined']}]" if v["undefined"] else "")


def format_table(summary: dict[str, Any], metrics=TABLE_METRICS) -> str:
    """Text tables of a :func:`summaries` result: lesion scans (``mean ± sd`` per metric, undefined
    counts in brackets), then lesion-free scans, then the selection protocol."""
    lesion, empty = summary["lesion"], summary["empty"]
    metrics = [m for m in metrics if all(m in s for s in lesion.values())]  # runs saved before a metric existed
    n = summary.get("scans", {})
    lines = [f"scans with a lesion ({n.get('lesion', '?')}):",
             "  ".join(["method".ljust(32)] + [m.rjust(16) for m in metrics])]
    for method, s in lesion.items():
        lines.append("  ".join([method[:32].ljust(32)] + [_cell(s[m]).rjust(16) for m in metrics]))
    if n.get("empty"):
        lines.append(f"lesion-free scans ({n['empty']}):")
        lines.append("  ".join(["method".ljust(32), "false-positive ml".rjust(18), "predicted empty".rjust(16)]))
        for method, s in empty.items():
            lines.append("  ".join([method[:32].ljust(32), _cell(s["fp_ml"], 2).rjust(18),
                                    _cell(s["empty_ok"], 2).rjust(16)]))
    if any(m.startswith("lesion_f1") for m in metrics):
        lines.append(F1_LEGEND)
    lines.append(f"selection: {summary['protocol']} - {summary.get('protocol_text') or PROTOCOLS[summary['protocol']]}")
    return "\n".join(lines)
