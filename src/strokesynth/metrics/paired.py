"""Paired comparisons of two methods on the same held-out scans: per-scan differences and a
Wilcoxon signed-rank test."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

#: per-case metrics for which a lower value is better (distances, volume and count errors)
LOWER_IS_BETTER = frozenset({"hd", "hd95", "assd", "avd_ml", "avd", "abs_volume_diff_ml", "lesion_count_diff",
                             "fp_ml", "anomaly_fp_px", "mae", "rmse"})


def paired_dice(csv_a: Path, method_a: str, csv_b: Path, method_b: str) -> dict[str, Any]:
    """Per-scan Dice of ``method_b`` minus ``method_a`` on the lesion scans both scored (same
    folds), with a Wilcoxon signed-rank test; from two ``metrics/cases.csv`` files."""
    return paired_metric(csv_a, method_a, csv_b, method_b, "dice")


def paired_metric(csv_a: Path, method_a: str, csv_b: Path, method_b: str, metric: str) -> dict[str, Any]:
    """:func:`paired_dice` for any numeric column ``metric`` of two per-case tables (lesion scans;
    cases where either value is undefined are left out)."""
    def read(path: Path, method: str) -> dict[str, float]:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = {r["case"]: float(r[metric]) if r.get(metric, "") not in ("", "nan") else float("nan")
                    for r in csv.DictReader(fh) if r["method"] == method and r.get("lesion", "True") == "True"}
        return {c: v for c, v in rows.items() if not np.isnan(v)}

    return paired_values(read(csv_a, method_a), read(csv_b, method_b), method_a, method_b, metric)


def paired_rows(rows: list[dict[str, Any]], method_a: str, method_b: str, metric: str = "dice") -> dict[str, Any]:
    """:func:`paired_values` of two methods' per-case rows held in memory (``method``, ``case``,
    ``lesion`` and ``metric`` keys; lesion scans only, undefined values left out)."""
    def values(method: str) -> dict[str, float]:
        return {r["case"]: float(r[metric]) for r in rows
                if r["method"] == method and r["lesion"] and not np.isnan(float(r[metric]))}

    return paired_values(values(method_a), values(method_b), method_a, method_b, metric)


def paired_values(a: dict[str, float], b: dict[str, float], method_a: str, method_b: str,
                  metric: str) -> dict[str, Any]:
    """``b`` minus ``a`` (case -> value, undefined values already left out) on the cases both have,
    with a Wilcoxon signed-rank test on the non-zero differences. ``better`` counts the cases where
    ``b`` is better than ``a``: a higher value, or a lower one for :data:`LOWER_IS_BETTER` metrics."""
    common = sorted(set(a) & set(b))
    diff = np.array([b[c] - a[c] for c in common])
    nonzero = diff[diff != 0]
    p = float(stats.wilcoxon(nonzero).pvalue) if nonzero.size >= 2 else float("nan")
    gain = -diff if metric in LOWER_IS_BETTER else diff
    return {"a": method_a, "b": method_b, "metric": metric, "cases": len(common),
            "mean_diff": float(diff.mean()) if diff.size else float("nan"),
            "better": int((gain > 0).sum()), "worse": int((gain < 0).sum()), "equal": int((diff == 0).sum()),
            "lower_is_better": metric in LOWER_IS_BETTER, "wilcoxon_p": p}


def describe_paired(p: dict[str, Any]) -> str:
    """One sentence for a paired comparison (Dice unless the result names another metric)."""
    name = {"dice": "Dice"}.get(p.get("metric", "dice"), p.get("metric", "dice"))
    return (f"{p['b']} - {p['a']}, {name} per held-out lesion scan: mean {p['mean_diff']:+.3f} over {p['cases']} "
            f"scan(s); better on {p['better']}, worse on {p['worse']}, equal on {p['equal']}; "
            f"Wilcoxon signed-rank p = {p['wilcoxon_p']:.3g}")
