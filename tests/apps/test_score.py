"""Scoring prediction folders made by any tool: layouts, grid checks, tables and paired comparisons."""

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from strokesynth.apps.score import score_predictions
from strokesynth.io import open_cohort, write_cohort
from strokesynth.metrics import evaluate_case
from strokesynth.metrics.baselines import BASELINE

from conftest import run_cli


def _write(path, array, affine):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array.astype(np.uint8), affine), str(path))


@pytest.fixture
def nn_data(tmp_path, toy_cases):
    """The toy cohort as an nnU-Net raw data set, with a perfect and an eroded prediction folder."""
    nn = write_cohort(toy_cases, tmp_path / "Dataset501_Toy", layout="nnunet", folds=2)
    perfect, eroded = tmp_path / "perfect", tmp_path / "eroded" / "fold_0" / "validation"
    for case in open_cohort(nn):
        ref = case.label.array > 0
        _write(perfect / f"{case.id}.nii.gz", ref, case.label.affine)
        _write(eroded / f"{case.id}.nii.gz", ndimage.binary_erosion(ref), case.label.affine)
    (eroded / "summary.json").write_text("{}")  # nnU-Net's own files are ignored
    return nn, perfect, eroded


def test_scores_nnunet_folders_paired(tmp_path, nn_data, capsys):
    nn, perfect, eroded = nn_data
    code, out, err = run_cli(capsys, "evaluate", "--predictions", str(perfect), "--predictions", str(eroded.parent),
                             "--reference", str(nn), "--name", "perfect", "--name", "eroded", "--out",
                             str(tmp_path / "score"))
    assert code == 0, err
    ev = json.loads((tmp_path / "score" / "evaluation.json").read_text())
    les = ev["summary"]["lesion"]
    assert les["perfect"]["dice"]["mean"] == 1.0 and les["perfect"]["hd95"]["mean"] == 0.0
    assert les["eroded"]["dice"]["mean"] < 1.0
    assert BASELINE in les  # the toy data has CBF
    pair = next(p for p in ev["paired"] if p["a"] == "perfect" and p["b"] == "eroded" and p["metric"] == "dice")
    assert pair["worse"] == pair["cases"] > 0 and pair["mean_diff"] < 0
    # the eroded values are evaluate_case's, case by case
    case = open_cohort(nn).cases[0]
    want = evaluate_case(ndimage.binary_erosion(case.label.array > 0), case.label.array > 0, case.spacing)
    import csv

    rows = list(csv.DictReader(open(tmp_path / "score" / "cases.csv")))
    got = next(r for r in rows if r["method"] == "eroded" and r["case"] == case.id)
    assert float(got["dice"]) == pytest.approx(want["dice"])
    assert "selection: external" in out and (tmp_path / "score" / "table.txt").exists()


def test_strokesynth_layout_and_missing_cases(tmp_path, nn_data):
    nn, perfect, _ = nn_data
    ours = tmp_path / "ours"
    cases = open_cohort(nn).cases
    for case in cases[1:]:
        _write(ours / case.id / "mask.nii.gz", case.label.array > 0, case.label.affine)
    ev = score_predictions([ours], nn, echo=lambda _: None)
    assert ev["missing"] == {"ours": [cases[0].id]}
    assert ev["summary"]["lesion"]["ours"]["dice"]["mean"] == 1.0


@pytest.mark.parametrize("problem, message", [
    ("shape", "differs from the reference"),
    ("affine", "affine differs"),
    ("probability", "besides 0 and 1"),
    ("unknown", "no reference case"),
])
def test_bad_predictions_refused_in_one_line(tmp_path, nn_data, capsys, problem, message):
    nn, perfect, _ = nn_data
    case = open_cohort(nn).cases[0]
    path = perfect / f"{case.id}.nii.gz"
    ref = case.label.array > 0
    if problem == "shape":
        _write(path, ref[:-1], case.label.affine)
    elif problem == "affine":
        aff = case.label.affine.copy()
        aff[0, 3] += 1.0
        _write(path, ref, aff)
    elif problem == "probability":
        nib.save(nib.Nifti1Image(ref.astype(np.float32) * 0.7, case.label.affine), str(path))
    else:
        _write(perfect / "not_a_case.nii.gz", ref, case.label.affine)
    code, _, err = run_cli(capsys, "evaluate", "--predictions", str(perfect), "--reference", str(nn), "--out",
                           str(tmp_path / "score"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "score").exists()


def test_evaluate_arguments(capsys, nn_data):
    nn, perfect, _ = nn_data
    code, _, err = run_cli(capsys, "evaluate", "--predictions", str(perfect))
    assert code == 2 and "go together" in err
    code, _, err = run_cli(capsys, "evaluate")
    assert code == 2 and "RUN folder" in err
