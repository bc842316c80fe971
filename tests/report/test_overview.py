"""The demo's overview table, rebuilt from per-case files written by hand."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from strokesynth.metrics.baselines import BASELINE, TMAX_BASELINE
from strokesynth.report.overview import overview

CASES = ["case_1", "case_2", "case_3", "case_4", "case_5"]


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, cols)
        w.writeheader()
        w.writerows(rows)


def _ctp(method: str, dice: list[float], base: list[float]) -> list[dict]:
    rows = []
    for c, d, b in zip(CASES, dice, base, strict=True):
        rows.append({"method": method, "fold": 0, "case": c, "lesion": True, "dice": d, "hd95": 10 * d, "avd_ml": 1.0,
                     "fp_ml": ""})
        rows.append({"method": BASELINE, "fold": 0, "case": c, "lesion": True, "dice": b, "hd95": 50.0, "avd_ml": 2.0,
                     "fp_ml": ""})
    rows.append({"method": method, "fold": 0, "case": "case_9", "lesion": False, "dice": 1.0, "hd95": 0.0,
                 "avd_ml": 0.5, "fp_ml": 0.5})
    rows.append({"method": BASELINE, "fold": 0, "case": "case_9", "lesion": False, "dice": 0.0, "hd95": "nan",
                 "avd_ml": 3.0, "fp_ml": 3.0})
    return rows


def test_overview_pairs_each_system_with_its_reference_on_the_same_units(tmp_path):
    base = [0.1, 0.2, 0.15, 0.3, 0.05]
    fcn = [0.5, 0.4, 0.2, 0.6, 0.1]
    cgan = [0.4, 0.5, 0.1, 0.7, 0.0]
    _write(tmp_path / "ctmr/fcn/metrics/cases.csv", _ctp("FCN", fcn, base))
    _write(tmp_path / "ctmr/fcn_cgan/metrics/cases.csv", _ctp("FCN-CGAN", cgan, base))
    lm = []
    for row, dice in (("clinical only", [0.3, 0.4, 0.5]), ("clinical + synthetic (pix2pix)", [0.35, 0.3, 0.7])):
        for c, d in zip(["s1", "s2", "s3"], dice, strict=True):
            lm.append({"row": row, "seed": 0, "case": c, "lesion": True, "dice": d, "hd95": 5.0, "avd_ml": 1.5,
                       "fp_ml": ""})
        lm.append({"row": row, "seed": 0, "case": "h1", "lesion": False, "dice": "", "hd95": "", "avd_ml": "",
                   "fp_ml": 0.25})
    _write(tmp_path / "labelmap/metrics/cases.csv", lm)
    ph = []
    for z, (f, s, a) in enumerate([(0.6, 0.7, 0.1), (0.5, 0.4, 0.0), (0.8, 0.9, 0.2)]):
        key = {"contrast": "dwi", "fold": 0, "case": "case_2", "z": z, "lesion": True}
        ph.append({**key, "row": "input (no synthesis)", "f_pre_dice": f, "s_dice": "", "anomaly_dice": ""})
        ph.append({**key, "row": "proposed paired", "f_pre_dice": "", "s_dice": s, "anomaly_dice": a})
    ph.append({"contrast": "dwi", "fold": 0, "case": "case_9", "z": 0, "lesion": False, "row": "proposed paired",
               "f_pre_dice": "", "s_dice": "", "anomaly_dice": ""})
    _write(tmp_path / "pseudo_healthy/metrics/slices.csv", ph)

    ov = overview(tmp_path)
    rows = {r["method"]: r for r in ov["rows"]}
    assert [r["system"] for r in ov["rows"]] == ["1 segmentation", "2 CT-to-MR cGAN", "baseline",
                                                "4 label-map augmentation", "4 label-map augmentation",
                                                "5 pseudo-healthy", "5 pseudo-healthy", "5 pseudo-healthy"]
    f = rows["FCN: PSPNet + focal loss"]
    assert f["n"] == 5 and f["dice"]["mean"] == pytest.approx(np.mean(fcn))
    assert f["dice"]["sd"] == pytest.approx(np.std(fcn, ddof=1))
    assert f["hd95"]["mean"] == pytest.approx(10 * np.mean(fcn)) and f["fp_ml"]["mean"] == pytest.approx(0.5)
    diff = np.array(fcn) - np.array(base)
    assert f["paired"]["mean_diff"] == pytest.approx(diff.mean())
    assert f["paired"]["better"] == int((diff > 0).sum()) and f["paired"]["cases"] == 5
    assert f["paired"]["wilcoxon_p"] == pytest.approx(stats.wilcoxon(diff).pvalue)
    b = rows["CBF < 30 % of the healthy median"]
    assert b["dice"]["mean"] == pytest.approx(np.mean(base)) and b["fp_ml"]["mean"] == pytest.approx(3.0)
    assert "paired" not in b
    syn = rows["3D U-Net: clinical + synthetic (pix2pix)"]
    assert syn["paired"]["vs"] == "3D U-Net: clinical only"
    assert syn["paired"]["mean_diff"] == pytest.approx(np.mean([0.05, -0.1, 0.2]))
    assert syn["fp_ml"]["mean"] == pytest.approx(0.25) and syn["n"] == 3
    s = rows["proposed paired: pathology map S"]
    assert s["n"] == 3 and s["paired"]["vs"].startswith("f_pre")
    assert s["paired"]["mean_diff"] == pytest.approx(np.mean([0.1, -0.1, 0.1]))
    assert rows["proposed paired: anomaly map"]["dice"]["mean"] == pytest.approx(0.1)
    assert "Dice vs reference (paired)" in ov["text"] and "held-out lesion slice" in ov["text"]


def test_overview_of_a_run_without_systems_is_empty(tmp_path):
    ov = overview(tmp_path)
    assert ov["rows"] == [] and ov["text"].startswith("system")


def test_the_tmax_baseline_is_listed_once_before_the_reference_and_paired_with_it(tmp_path):
    base, tmax = [0.1, 0.2, 0.15, 0.3, 0.05], [0.5, 0.1, 0.4, 0.2, 0.6]
    fcn, cgan = [0.5, 0.4, 0.2, 0.6, 0.1], [0.4, 0.5, 0.1, 0.7, 0.0]
    for folder, method, dice in (("fcn", "FCN", fcn), ("fcn_cgan", "FCN-CGAN", cgan)):
        rows = _ctp(method, dice, base)
        rows += [{"method": TMAX_BASELINE, "fold": 0, "case": c, "lesion": True, "dice": t, "hd95": 20.0,
                  "avd_ml": 1.0, "fp_ml": ""} for c, t in zip(CASES, tmax, strict=True)]
        rows.append({"method": TMAX_BASELINE, "fold": 0, "case": "case_9", "lesion": False, "dice": 0.0,
                     "hd95": "nan", "avd_ml": 2.0, "fp_ml": 2.0})
        _write(tmp_path / "ctmr" / folder / "metrics" / "cases.csv", rows)
    ov = overview(tmp_path)
    assert [r["method"] for r in ov["rows"]] == ["FCN: PSPNet + focal loss", "FCN-CGAN: + generated DWI",
                                                 "Tmax > 6 s", "CBF < 30 % of the healthy median"]
    t = ov["rows"][2]
    assert t["dice"]["mean"] == pytest.approx(np.mean(tmax)) and t["fp_ml"]["mean"] == pytest.approx(2.0)
    assert t["paired"]["vs"] == "CBF < 30 % of the healthy median"
    assert t["paired"]["mean_diff"] == pytest.approx(np.mean(np.array(tmax) - np.array(base)))
