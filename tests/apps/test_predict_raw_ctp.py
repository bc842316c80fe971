"""predict on a new patient's CT + raw 4D CTP: maps computed, core, Tmax > 6 s, mismatch, pages, CSV."""

from __future__ import annotations

import csv
import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from conftest import run_cli

MAPS = ("cbf", "cbv", "mtt", "tmax")


def _img(path):
    return np.asanyarray(nib.load(path).dataobj)


def test_maps_computed_from_the_raw_ctp_equal_the_data_sets(capsys, trained):
    root, full, raw = trained
    code, given, err = run_cli(capsys, "predict", "--model", str(root / "run"), "--input", str(full),
                               "--out", str(root / "p_full"), "--precision", "fp32")
    assert code == 0, err
    code, text, err = run_cli(capsys, "predict", "--model", str(root / "run"), "--input", str(raw),
                              "--out", str(root / "p_raw"), "--precision", "fp32")
    assert code == 0, err
    assert "computed from the raw 4D CTP (osvd" in text
    cases = sorted(p.name for p in full.iterdir() if p.is_dir())
    for case in cases:
        out = root / "p_raw" / case
        # the phantom's maps are made by the same analysis: the computed ones equal them up to float
        # rounding (measured: 1e-6 relative; Tmax, whose corrected onset interpolates a table, within
        # 1.2e-5 s), and so does everything the model predicts from them
        for key in MAPS:
            assert np.allclose(_img(out / "maps" / f"{key}.nii.gz"), _img(full / case / f"{key}.nii.gz"),
                               rtol=1e-5, atol=1e-4 if key == "tmax" else 1e-5), key
            assert np.allclose(nib.load(out / "maps" / f"{key}.nii.gz").affine, nib.load(full / case / "ct.nii.gz").affine)
        assert np.allclose(_img(out / "prob.nii.gz"), _img(root / "p_full" / case / "prob.nii.gz"), atol=1e-4)
        hypo = _img(out / "hypoperfusion.nii.gz")
        assert np.array_equal(hypo > 0, _img(out / "maps" / "tmax.nii.gz") > 6.0)
        assert np.array_equal(_img(root / "p_full" / case / "hypoperfusion.nii.gz") > 0,
                              _img(full / case / "tmax.nii.gz") > 6.0)
        perf = json.loads((out / "maps" / "perfusion.json").read_text())
        assert perf["method"] == "osvd" and perf["computed"] == list(MAPS) and perf["frames"] >= 12
        assert perf["aif"]["arrival_s"] > 0 and (out / "maps" / "aif.png").is_file()
        assert "AIF arrival" in (out / "report.html").read_text()
        page = (out / "report.html").read_text()
        assert "Tmax &gt; 6 s" in page and "data:image/png;base64" in page and "bolus window" in page
        assert "maps" not in [p.name for p in (root / "p_full" / case).iterdir()]  # given maps are not rewritten
    rows = list(csv.DictReader((root / "p_raw" / "volumes.csv").open()))
    assert [r["case"] for r in rows] == cases
    spacing = np.prod(nib.load(full / cases[0] / "ct.nii.gz").header.get_zooms()[:3])
    for r in rows:
        hypo_ml = float((_img(root / "p_raw" / r["case"] / "hypoperfusion.nii.gz") > 0).sum() * spacing / 1000)
        core_ml = float((_img(root / "p_raw" / r["case"] / "mask.nii.gz") > 0).sum() * spacing / 1000)
        assert float(r["hypoperfusion_ml"]) == pytest.approx(hypo_ml, abs=1e-3)
        assert float(r["core_ml"]) == pytest.approx(core_ml, abs=1e-3)
        assert float(r["mismatch_ml"]) == pytest.approx(max(hypo_ml - core_ml, 0.0), abs=2e-3)
        assert r["maps"] == "computed"
        if core_ml > 0:
            assert float(r["mismatch_ratio"]) == pytest.approx(hypo_ml / core_ml, rel=1e-2)
        else:
            assert r["mismatch_ratio"] == ""
    # the stroke subjects' scans are hypoperfused, and the CSV says so
    assert max(float(r["hypoperfusion_ml"]) for r in rows) > 1.0


def _spoil(raw, dest, how):
    shutil.copytree(raw, dest)
    case = sorted(p for p in dest.iterdir() if p.is_dir())[-1]
    path = case / "ctp.nii.gz"
    img = nib.load(path)
    data = np.asanyarray(img.dataobj)
    if how == "dt":
        hdr = img.header.copy()
        hdr["pixdim"][4] = 0.0
        nib.save(nib.Nifti1Image(data, img.affine, hdr), path)
    elif how == "frames":
        nib.save(nib.Nifti1Image(data[..., :8], img.affine, img.header), path)
    elif how == "grid":
        aff = img.affine.copy()
        aff[:3, 3] += 7.0
        nib.save(nib.Nifti1Image(data, aff, img.header), path)
    elif how == "no_ctp":
        path.unlink()
    return dest, case


@pytest.mark.parametrize("how, words", [("dt", "frame interval"), ("frames", "frames"),
                                        ("grid", "grid"), ("no_ctp", "no raw 4D CTP")])
def test_a_bad_raw_ctp_is_one_line_and_nothing_is_written(capsys, tmp_path, trained, how, words):
    root, _, raw = trained
    data, case = _spoil(raw, tmp_path / "data", how)
    code, text, err = run_cli(capsys, "predict", "--model", str(root / "run"), "--input", str(data),
                              "--out", str(tmp_path / "out"))
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0] and case.name in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


class _Stop(Exception):
    pass


def test_a_stopped_batch_resumes_to_the_uninterrupted_result(tmp_path, trained):
    from strokesynth._fs import staging_dir
    from strokesynth.apps.predict import load_predictor, predict_cases
    from strokesynth.errors import ConfigError

    root, _, all_cases = trained
    raw = tmp_path / "raw"  # three cases are enough (and keep the test short)
    for case in sorted(p for p in all_cases.iterdir() if p.is_dir())[:3]:
        shutil.copytree(case, raw / case.name)
    model = [load_predictor(root / "run")]
    whole = predict_cases(model, raw, tmp_path / "whole", echo=lambda s: None)

    def stop_after_two(line: str) -> None:
        if line.startswith("[2/"):
            raise _Stop(line)

    out = tmp_path / "out"
    with pytest.raises(_Stop):
        predict_cases(model, raw, out, echo=stop_after_two)
    assert not out.exists()
    assert sorted(p.name for p in staging_dir(out).iterdir() if p.is_dir()) == [r["case"] for r in whole[:2]]
    with pytest.raises(ConfigError, match="other models, data or settings"):
        predict_cases(model, raw, out, resume=True, threshold=0.3, echo=lambda s: None)
    lines: list[str] = []
    resumed = predict_cases(model, raw, out, resume=True, echo=lines.append)
    assert sum("done earlier" in line for line in lines) == 2 and sum("computed from the raw" in line for line in lines) == 1
    assert resumed == whole and not staging_dir(out).exists()
    for r in whole:
        assert np.array_equal(_img(out / r["case"] / "prob.nii.gz"), _img(tmp_path / "whole" / r["case"] / "prob.nii.gz"))
    assert (out / "volumes.csv").read_text() == (tmp_path / "whole" / "volumes.csv").read_text()


def test_an_isles2018_case_with_only_ct_and_ctp_gets_its_maps(capsys, tmp_path, trained):
    """ISLES 2018's layout no longer requires the maps when the raw CTP is there (issue 35: `predict`
    refused such a case with `missing modality CT_CBF, CT_CBV, CT_MTT, CT_Tmax`)."""
    root, full, raw = trained
    isles = tmp_path / "isles2018"
    code, _, err = run_cli(capsys, "convert", str(raw), str(isles), "--to", "isles2018")
    assert code == 0, err
    assert not list(isles.rglob("SMIR.Brain.XX.O.CT_CBF.*"))  # CT, CT_4DPWI and OT only
    code, text, err = run_cli(capsys, "predict", "--model", str(root / "run"), "--input", str(isles),
                              "--out", str(tmp_path / "p"), "--precision", "fp32")
    assert code == 0, err
    assert "computed from the raw 4D CTP (osvd" in text
    for row in json.loads((tmp_path / "p" / "volumes.json").read_text()):
        assert row["maps"] == "computed" and (tmp_path / "p" / row["case"] / "maps" / "tmax.nii.gz").is_file()
    # training on maps names what such a data set lacks, in one line
    code, _, err = run_cli(capsys, "train", "--set", f"data.dataset={isles}", "--set", "data.size=[96,96]",
                           "--out", str(tmp_path / "run"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cbf" in err.lower(), err
    assert not (tmp_path / "run").exists()


def test_an_oblique_isles24_release_with_only_ct_and_ctp_is_predicted_on_its_ncct_grid(capsys, trained, tmp_path):
    """An ISLES'24 subject whose maps are missing: they are computed from its CTP (frame times from
    its sidecar), and mask, maps and hypoperfusion land on the NCCT's oblique grid."""
    from strokesynth.phantom.isles24 import Isles24Geometry, write_isles24_phantom

    from conftest import tiny_phantom_config

    root, _, _ = trained
    release = tmp_path / "release"
    write_isles24_phantom(tiny_phantom_config(subjects=1, healthy=0, seed=4), release,
                          Isles24Geometry(size=96, slices=8, slice_mm=4.0, frames=30, dt=1.5, factor=2, oblique_deg=12.0))
    sub = "sub-stroke0001"
    shutil.rmtree(release / "derivatives" / sub / "ses-01" / "perfusion-maps")
    ncct = nib.load(release / "raw_data" / sub / "ses-01" / f"{sub}_ses-01_ncct.nii.gz")
    assert abs(ncct.affine[1, 2]) > 0.1  # oblique: z has a y component
    code, text, err = run_cli(capsys, "predict", "--model", str(root / "run"), "--input", str(release),
                              "--out", str(tmp_path / "pred"), "--precision", "fp32")
    assert code == 0, err
    assert "computed from the raw 4D CTP" in text
    out = tmp_path / "pred" / sub
    for name in ("mask.nii.gz", "prob.nii.gz", "hypoperfusion.nii.gz", "maps/tmax.nii.gz"):
        image = nib.load(out / name)
        assert image.shape[:3] == ncct.shape and np.allclose(image.affine, ncct.affine, atol=1e-4), name
    facts = json.loads((out / "maps" / "perfusion.json").read_text())
    assert facts["frame_timing"]["source"] == "sidecar FrameTimesStart (uniform)" and facts["dt_s"] == 1.5
