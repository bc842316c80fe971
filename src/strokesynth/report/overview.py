"""One table over the five systems of a demo run: method x Dice, HD95, volume error, paired
against a reference on the same held-out scans.

Every row is read from the per-case metrics a system's run folder saved, so the table is
rebuilt from files alone (``strokesynth report``). The systems do not all see the same data,
and the table says so in its ``data`` and ``unit`` columns:

* CTP slabs (segmentation, CT-to-MR cGAN, pseudo-DWI): held-out scans of the same
  subject-level folds, so every method and the CBF-threshold baseline are paired scan by scan;
* whole-brain MR studies (label-map augmentation): held-out stroke subjects; the reference is
  the same 3D U-Net trained on clinical data only;
* pseudo-healthy synthesis: held-out *slices* with a lesion (DWI); the factorisation's pathology
  map S and the anomaly map ``|x - pseudo-healthy(x)| > t`` (``t`` chosen on training slices),
  paired with the slice segmentor ``f_pre`` trained on the same slices.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from strokesynth.metrics.baselines import BASELINE, BASELINES, TMAX_BASELINE
from strokesynth.metrics.paired import paired_values

#: Overview columns: key -> (header, digits)
COLUMNS = {"dice": ("Dice", 3), "hd95": ("HD95 (mm)", 1), "avd_ml": ("|volume error| (ml)", 1)}


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _stats(values: list[float]) -> dict[str, float]:
    a = np.array([v for v in values if not math.isnan(v)], dtype=float)
    return {"mean": float(a.mean()) if a.size else float("nan"),
            "sd": float(a.std(ddof=1)) if a.size > 1 else float("nan"), "n": int(a.size),
            "undefined": int(len(values) - a.size)}


def _row(system: str, method: str, data: str, unit: str, lesion: list[dict[str, Any]], empty: list[dict[str, Any]],
         key: str = "case") -> dict[str, Any]:
    """One overview row from per-case dicts with ``dice`` (and optionally ``hd95``, ``avd_ml``)."""
    out: dict[str, Any] = {"system": system, "method": method, "data": data, "unit": unit, "n": len(lesion),
                           "per_case": {str(r[key]): _num(r.get("dice")) for r in lesion}}
    for col in COLUMNS:
        out[col] = _stats([_num(r.get(col)) for r in lesion])
    out["fp_ml"] = _stats([_num(r.get("fp_ml")) for r in empty]) if empty else None
    out["n_empty"] = len(empty)
    return out


def _paired(row: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    a = {k: v for k, v in ref["per_case"].items() if not math.isnan(v)}
    b = {k: v for k, v in row["per_case"].items() if not math.isnan(v)}
    p = paired_values(a, b, ref["method"], row["method"], "dice")
    return {"vs": ref["method"], "mean_diff": p["mean_diff"], "better": p["better"], "worse": p["worse"],
            "cases": p["cases"], "wilcoxon_p": p["wilcoxon_p"]}


#: The group of the CTP rows: every row of it is paired scan by scan with the group's reference,
#: the CBF-threshold baseline of the first CTP system in the demo.
CTP = "ctp"


def ctp_rows(system: str, label: str, cases_csv: Path) -> list[dict[str, Any]]:
    """The row of the method in a CTP run's ``metrics/cases.csv``, the Tmax > 6 s baseline's (a
    member of the CTP group, kept once) and the CBF-threshold baseline's (marked as the CTP group's
    reference), held-out scans with a lesion apart from lesion-free ones."""
    if not cases_csv.is_file():
        return []
    recs = _read(cases_csv)
    method = next((r["method"] for r in recs if r["method"] not in BASELINES), None)
    if method is None:
        return []
    mine = [r for r in recs if r["method"] == method]
    out = [{**_row(system, label, "CTP slabs", "held-out scan", [r for r in mine if r["lesion"] == "True"],
                   [r for r in mine if r["lesion"] != "True"]), "group": CTP}]
    tmax = [r for r in recs if r["method"] == TMAX_BASELINE]
    if tmax:
        out.append({**_row("baseline", "Tmax > 6 s", "CTP slabs", "held-out scan",
                           [r for r in tmax if r["lesion"] == "True"], [r for r in tmax if r["lesion"] != "True"]),
                    "group": CTP, "once": TMAX_BASELINE})
    base = [r for r in recs if r["method"] == BASELINE]
    if base:
        out.append({**_row("baseline", "CBF < 30 % of the healthy median", "CTP slabs", "held-out scan",
                           [r for r in base if r["lesion"] == "True"], [r for r in base if r["lesion"] != "True"]),
                    "reference_of": CTP})
    return out


def segmentation_rows(folder: Path) -> list[dict[str, Any]]:
    """The FCN trained alone (the demo's segmentation system, ``folder``: its training run)."""
    return ctp_rows("1 segmentation", "FCN: PSPNet + focal loss", folder / "metrics" / "cases.csv")


def ctmr_rows(folder: Path) -> list[dict[str, Any]]:
    """FCN and FCN-CGAN of a ``ctmr-cgan`` run."""
    if not (folder / "fcn" / "metrics" / "cases.csv").is_file():
        return []
    return (ctp_rows("1 segmentation", "FCN: PSPNet + focal loss", folder / "fcn" / "metrics" / "cases.csv")
            + ctp_rows("2 CT-to-MR cGAN", "FCN-CGAN: + generated DWI", folder / "fcn_cgan" / "metrics" / "cases.csv"))


def pseudo_dwi_rows(folder: Path) -> list[dict[str, Any]]:
    """Every trained row of a ``pseudo-dwi`` run (SLNet on its pseudo-DWI)."""
    out: list[dict[str, Any]] = []
    for path in sorted((folder / "rows").glob("*/metrics/cases.csv")):
        out += ctp_rows("3 pseudo-DWI", "SLNet on pseudo-DWI (end to end)", path)
    return out


def combine(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The systems' rows as one table: a row in a ``group`` is paired with the group's reference
    (the first row marked ``reference_of`` that group; later ones are the same baseline again and
    are dropped), which follows the group's last row. Rows without a group keep the pairing their
    system gave them."""
    refs: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    once: dict[str, dict[str, Any]] = {}
    for r in rows:
        group = r.pop("reference_of", None)
        key = r.pop("once", None)
        if group is not None:
            refs.setdefault(group, r)
        elif key is not None:  # a second baseline: listed once, after the methods of its group
            once.setdefault(key, r)
        else:
            out.append(r)
    for group, ref in refs.items():
        members = [i for i, r in enumerate(out) if r.get("group") == group]
        extra = [o for o in once.values() if o.get("group") == group]
        for r in [out[i] for i in members] + extra:
            r["paired"] = _paired(r, ref)
        at = members[-1] + 1 if members else len(out)
        out[at:at] = [*extra, ref]
    out += [o for o in once.values() if o.get("group") not in refs]
    for r in out:
        r.pop("group", None)
    return out


def labelmap_rows(folder: Path) -> list[dict[str, Any]]:
    """Every 3D U-Net row of a ``labelmap-augmentation`` run, paired with its clinical-only row."""
    path = folder / "metrics" / "cases.csv"
    if not path.is_file():
        return []
    recs = _read(path)
    out = []
    for name in dict.fromkeys(r["row"] for r in recs):
        mine = [r for r in recs if r["row"] == name]  # one seed in the demo; several are averaged per subject
        by_case: dict[str, list[dict[str, str]]] = {}
        for r in mine:
            by_case.setdefault(r["case"], []).append(r)
        merged = [{"case": c, "lesion": rs[0]["lesion"], **{k: _stats([_num(x.get(k)) for x in rs])["mean"]
                                                            for k in ("dice", "hd95", "avd_ml", "fp_ml")}}
                  for c, rs in by_case.items()]
        out.append(_row("4 label-map augmentation", f"3D U-Net: {name}", "MR studies", "held-out subject",
                        [r for r in merged if r["lesion"] == "True"], [r for r in merged if r["lesion"] != "True"]))
    ref = next((r for r in out if r["method"].endswith("clinical only")), None)
    if ref is not None:
        for r in out:
            if r is not ref:
                r["paired"] = _paired(r, ref)
    return out


def pseudo_healthy_rows(folder: Path) -> list[dict[str, Any]]:
    """Per model of a ``pseudo-healthy`` run: its pathology map S (factorisation models) and its
    anomaly map, paired slice by slice with the slice segmentor f_pre trained on the same slices."""
    path = folder / "metrics" / "slices.csv"
    if not path.is_file():
        return []
    recs = [r for r in _read(path) if r["lesion"] == "True"]
    for r in recs:
        r["slice"] = f"{r['contrast']}/{r['fold']}/{r['case']}/{r['z']}"
    out = []
    ref = None
    inputs = [r for r in recs if r.get("f_pre_dice", "") != ""]
    if inputs:
        data = f"{inputs[0]['contrast'].upper()} slices"
        ref = _row("5 pseudo-healthy", "f_pre: slice segmentor (reference)", data, "held-out lesion slice",
                   [{**r, "dice": r["f_pre_dice"]} for r in inputs], [], key="slice")
    for name in dict.fromkeys(r["row"] for r in recs):
        for col, what in (("s_dice", "pathology map S"), ("anomaly_dice", "anomaly map")):
            mine = [{**r, "dice": r[col]} for r in recs if r["row"] == name and r.get(col, "") != ""]
            if mine:
                row = _row("5 pseudo-healthy", f"{name}: {what}", f"{mine[0]['contrast'].upper()} slices",
                           "held-out lesion slice", mine, [], key="slice")
                if ref is not None:
                    row["paired"] = _paired(row, ref)
                out.append(row)
    return out + ([ref] if ref is not None else [])


def overview(run_path: str | os.PathLike) -> dict[str, Any]:
    """The overview of the demo run at ``run_path``: ``rows`` (one per method and system, in the
    order of the systems; each with Dice / HD95 / volume-error summaries over the held-out lesion
    units, false-positive ml on lesion-free ones, and ``paired`` against its reference) and
    ``text`` (the table as text)."""
    from strokesynth.recipes.recipe import resolve
    from strokesynth.recipes.registry import RECIPES

    run = Path(run_path)
    fcn_in_ctmr = (run / "ctmr" / "fcn" / "metrics" / "cases.csv").is_file()  # the FCN trained with the cGAN
    rows = [] if fcn_in_ctmr else segmentation_rows(run / "segmentation")
    for recipe, part in RECIPES.demo_parts():
        if recipe.overview is not None and (run / part.folder).is_dir():
            rows += resolve(recipe.overview)(run / part.folder)
    rows = combine(rows)
    return {"rows": rows, "text": overview_text(rows)}


def _cell(s: dict[str, float] | None, digits: int) -> str:
    if s is None or math.isnan(s["mean"]):
        return "-"
    text = f"{s['mean']:.{digits}f}"
    if not math.isnan(s["sd"]):
        text += f"±{s['sd']:.{digits}f}"
    return text


def paired_text(p: dict[str, Any] | None) -> str:
    """``+0.123 (7/9, p 0.02)``: mean paired Dice difference, units better/total, Wilcoxon p."""
    if not p or not p["cases"]:
        return "-"
    pv = "-" if math.isnan(p["wilcoxon_p"]) else f"{p['wilcoxon_p']:.2g}"
    return f"{p['mean_diff']:+.3f} ({p['better']}/{p['cases']} better, p {pv})"


def overview_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of the overview table (shared by the text and the HTML)."""
    header = ["system", "method", "data (unit)", "n", *(h for h, _ in COLUMNS.values()), "FP ml (lesion-free)",
              "Dice vs reference (paired)", "reference"]
    cells = []
    for r in rows:
        p = r.get("paired")
        cells.append([r["system"], r["method"], f"{r['data']} ({r['unit']})", str(r["n"]),
                      *(_cell(r[k], d) for k, (_, d) in COLUMNS.items()),
                      _cell(r["fp_ml"], 2) + (f" (n={r['n_empty']})" if r["fp_ml"] else ""),
                      paired_text(p), p["vs"] if p else "-"])
    return header, cells


def overview_text(rows: list[dict[str, Any]]) -> str:
    header, cells = overview_rows(rows)
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
