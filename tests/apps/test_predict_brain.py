"""`predict` keeps the core within the brain and flags implausible cores (the second hostile round:
a one-epoch model marked the whole 5,839 ml field of view as core and nothing said so)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from conftest import run_cli


def _everything_is_core(monkeypatch):
    import strokesynth.apps.predict as predict

    def ones(model, cfg, case):
        return np.ones(case.spatial_shape, np.float32), None

    monkeypatch.setattr(predict, "_probability", ones)


def test_core_is_kept_within_the_brain_and_flagged(tmp_path, capsys, monkeypatch, trained):
    root, full, raw = trained
    _everything_is_core(monkeypatch)
    for source, origin in ((full, "CT"), (raw, "CT")):  # maps given, or computed from the raw CTP
        out = tmp_path / source.name
        code, text, err = run_cli(capsys, "predict", "--model", str(root / "run"), "--input", str(source), "--out",
                                  str(out))
        assert code == 0, err
        rows = json.loads((out / "volumes.json").read_text())
        for row in rows:
            assert row["brain_mask"] == origin
            fov_ml = row["core_ml"] + row["outside_brain_ml"]
            assert 0 < row["core_ml"] <= row["brain_ml"] < fov_ml  # the field of view minus what lies outside
            assert any("outside the brain" in f for f in row["flags"])
            assert any("more than 50% of the brain" in f for f in row["flags"])
            mask = np.asanyarray(nib.load(str(out / row["case"] / "mask.nii.gz")).dataobj)
            prob = np.asanyarray(nib.load(str(out / row["case"] / "prob.nii.gz")).dataobj)
            assert not mask.all() and np.array_equal(mask > 0, prob > 0.5)
            assert "WARNING" in (out / row["case"] / "report.html").read_text()
        assert "warning:" in text and "outside the brain" in (out / "volumes.csv").read_text()


def test_a_plausible_core_is_not_flagged():
    from strokesynth.apps.predict import core_flags

    row = {"core_ml": 12.0, "brain_ml": 900.0, "brain_mask": "CT", "outside_brain_ml": 0.0}
    assert core_flags(row) == []
    assert core_flags({**row, "brain_ml": None})[0].startswith("no brain mask")
