"""nnU-Net v2 export: default channels, named omissions, subject-level splits, real integrity check."""

import json

import numpy as np
import pytest

from strokesynth.data.case import Case
from strokesynth.data.volume import Volume
from strokesynth.errors import OutputError
from strokesynth.io import open_cohort, write_cohort


def test_defaults_are_ctp_inputs_and_omissions_are_named(tmp_path, toy_cases):
    notes: list[str] = []
    out = write_cohort(toy_cases, tmp_path / "Dataset501_Toy", layout="nnunet", folds=2, notes=notes)
    spec = json.loads((out / "dataset.json").read_text())
    assert spec["name"] == "Dataset501_Toy"  # never the temporary folder's name
    assert list(spec["channel_names"].values()) == ["ct", "cbf", "cbv", "mtt", "tmax"]
    assert notes[0] == "channels: 0000 ct, 0001 cbf, 0002 cbv, 0003 mtt, 0004 tmax"
    assert any(n.startswith("left out dwi: not asked for") for n in notes)
    assert any(n.startswith("left out ctp: 4D series") for n in notes)
    # DWI only when asked
    notes = []
    out2 = write_cohort(toy_cases, tmp_path / "Dataset502_Toy", layout="nnunet", modalities=["cbf", "dwi"],
                        notes=notes, folds=2)
    assert list(json.loads((out2 / "dataset.json").read_text())["channel_names"].values()) == ["cbf", "dwi"]


def test_splits_final_keeps_subjects_together(tmp_path, toy_cases):
    out = write_cohort(toy_cases, tmp_path / "nn", layout="nnunet", folds=2, seed=3)
    splits = json.loads((out / "splits_final.json").read_text())
    subject = {c.id: c.subject for c in toy_cases}
    assert len(splits) == 2
    assert sorted(i for s in splits for i in s["val"]) == sorted(subject)  # each case held out once
    for s in splits:
        assert not {subject[i] for i in s["train"]} & {subject[i] for i in s["val"]}
        assert sorted(s["train"] + s["val"]) == sorted(subject)


def test_too_few_subjects_for_folds_is_said(tmp_path, toy_cases):
    notes: list[str] = []
    out = write_cohort(toy_cases, tmp_path / "nn", layout="nnunet", folds=50, notes=notes)
    assert not (out / "splits_final.json").exists() and any("no splits_final.json" in n for n in notes)


def test_real_isles22_flair_left_out_by_name(tmp_path, isles22_dir):
    notes: list[str] = []
    write_cohort(open_cohort(isles22_dir).cases, tmp_path / "nn", layout="nnunet", notes=notes)
    assert notes[0] == "channels: 0000 adc, 0001 dwi"
    assert "left out flair: on its own grid (nnU-Net needs every channel on one grid)" in notes


def test_non_binary_label_refused_and_nothing_written(tmp_path, toy_cases):
    case = toy_cases[0]
    label = case.label.array.astype(np.uint8) * 2
    bad = Case(case.id, case.subject, {**case.modalities, "lesion": Volume(label, case.label.affine, kind="label")})
    with pytest.raises(OutputError, match="besides 0 and 1"):
        write_cohort([bad, *toy_cases[1:]], tmp_path / "nn", layout="nnunet")
    assert not (tmp_path / "nn").exists()


def test_nnunet_accepts_the_export(tmp_path, toy_cases):
    pytest.importorskip("nnunetv2", reason="nnunetv2 (optional extra 'nnunet') is not installed")
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    out = write_cohort(toy_cases, tmp_path / "Dataset501_Toy", layout="nnunet", folds=2)
    verify_dataset_integrity(str(out), num_processes=1)  # raises on any problem
