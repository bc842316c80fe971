"""CT-to-MR cGAN: out-of-fold synthesis, quality metrics, FCN vs FCN-CGAN, report, resume, bad input."""

import base64
import csv
import json
import re

import nibabel as nib
import numpy as np
import pytest

from strokesynth.config import to_dict
from strokesynth.data.normalize import Normalization
from strokesynth.data.splits import load_splits, subject_kfold
from strokesynth.errors import DataError
from strokesynth.io import open_cohort, write_cohort
from strokesynth.io.cohort import attach_derived
from strokesynth.phantom import PhantomConfig, generate_cohort, write_phantom
from strokesynth.recipes.ctmr import (
    FCN,
    FCN_CGAN,
    load_ctmr_config,
    paper_config,
    run_ctmr,
    tiny_config,
    train_synthesis_fold,
)
from strokesynth.report.ctmr import write_ctmr_report

from conftest import run_cli


@pytest.fixture(scope="module")
def ctmr_data(tmp_path_factory):
    cfg = PhantomConfig(subjects=6, seed=21)
    cfg.grid.size, cfg.grid.spacing_mm, cfg.grid.slices, cfg.grid.sub_slices = 64, 3.6, [4, 6], 3
    cfg.stroke.core_radius_mm = (15.0, 40.0)
    cfg.stroke.no_core_prob = 0.0
    return write_phantom(generate_cohort(cfg), tmp_path_factory.mktemp("ctmr") / "data", cfg, figures=False)


def tiny_cfg(data, gan_epochs=10, seg_epochs=6):
    cfg = load_ctmr_config("tiny", [f"dataset={data}", "folds=3", "synthesis.data.size=[64,64]",
                                    "segmentation.data.size=[64,64]", f"synthesis.run.epochs={gan_epochs}",
                                    f"segmentation.run.epochs={seg_epochs}", "synthesis.generator.ngf=8",
                                    "synthesis.discriminator.ndf=8", "synthesis.discriminator.n_layers=2",
                                    "segmentation.model.width=8"])
    return cfg


@pytest.fixture(scope="module")
def ctmr_run(ctmr_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ctmr_run") / "run"
    summary = run_ctmr(tiny_cfg(ctmr_data), out, echo=lambda s: None)
    write_ctmr_report(out)
    return out, summary


def test_generated_dwi_is_out_of_fold_on_the_case_grid(ctmr_data, ctmr_run):
    out, _ = ctmr_run
    cases = open_cohort(ctmr_data).cases
    splits = load_splits(out / "splits.json", cases)
    assert splits.to_json() == subject_kfold(cases, 3, 0).to_json()
    prov = json.loads((out / "dwi_gen/provenance.json").read_text())
    assert sorted(prov) == sorted(c.id for c in cases)
    for case in cases:
        k = prov[case.id]["fold"]
        assert k == splits.fold_of(case.id)
        assert case.id not in splits.folds[k].train_cases  # its generator never saw it
        img = nib.load(out / "dwi_gen" / case.id / "dwi_gen.nii.gz")
        assert img.shape == case.spatial_shape
        np.testing.assert_allclose(img.affine, case.affine, atol=1e-5)
        arr = np.asarray(img.dataobj)
        assert 0 <= arr.min() and arr.max() <= 1 and arr.std() > 0.01
    # the same folds everywhere: the segmenters of fold k are evaluated where cGAN k generated
    for sub in ("fcn", "fcn_cgan"):
        assert (out / sub / "splits.json").read_text() == (out / "splits.json").read_text()


def test_cgan_learns_and_reproduces_the_head_out_of_fold(ctmr_data, ctmr_run):
    out, _ = ctmr_run
    for k in range(3):
        hist = json.loads((out / f"synthesis/fold_{k}/metrics.json").read_text())
        assert hist[-1]["loss_g_l1"] < hist[0]["loss_g_l1"]
        assert (out / f"synthesis/fold_{k}/samples/epoch_010.png").exists()
        # the paper trains each fold's cGAN on the whole training part (the last epoch is kept): no inner
        # split is held out, so nothing is scored during training; the held-out check is below
        assert "val_l1" not in hist[-1]
    # held-out scans: the generated DWI reproduces the head (correlation with the real DWI over the slab)
    cases = open_cohort(ctmr_data, derived=[out / "dwi_gen"]).cases
    gan, _, _ = tiny_cfg(ctmr_data).resolved()
    norm = Normalization(dict(gan.data.normalization))
    for case in cases:
        real = norm("dwi", case["dwi"].array)
        assert np.corrcoef(case["dwi_gen"].array.ravel(), real.ravel())[0, 1] > 0.7
    rows = list(csv.DictReader(open(out / "metrics/quality_cases.csv")))
    assert len(rows) == len(cases)
    assert all(0 < float(r["ssim_brain"]) <= 1 and float(r["psnr_brain"]) > 5 for r in rows)


def test_fcn_vs_fcn_cgan_table_and_report(ctmr_run):
    out, summary = ctmr_run
    table = json.loads((out / "table.json").read_text())
    assert set(table["overall"]) >= {FCN, FCN_CGAN}
    for m in (FCN, FCN_CGAN):
        for k in ("dice", "hd", "assd", "precision", "recall", "avd_ml"):
            assert k in table["overall"][m]
    cgan_cfg = (out / "fcn_cgan/config.yaml").read_text()
    assert "- dwi_gen" in cgan_cfg and "- dwi_gen" not in (out / "fcn/config.yaml").read_text()
    text = (out / "table.txt").read_text()
    assert "FCN-CGAN" in text and "Wilcoxon" in text
    html = (out / "report.html").read_text()
    for heading in ("CT-to-MR synthesis", "FCN vs FCN-CGAN", "Per-case overlays", "Training curves"):
        assert heading in html
    assert f"{summary['segmentation'][FCN]['dice']['mean']:.3f}" in html
    assert f"{summary['quality']['ssim_brain']['mean']:.3f}" in html
    images = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    assert len(images) >= 6
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "http://" not in html and "https://" not in html  # nothing to fetch: opens offline
    # phantom data: the reference DWI is called simulated, overlays give the shown slice's Dice,
    # headers are words with units
    assert "simulated DWI" in html and "real DWI" not in html
    assert "of the slice shown" in html and "whole-scan Dice" in html and "HD95 (mm)" in html
    assert "abs. volume diff. (ml)" in html


def test_report_command_rebuilds_the_same_numbers(ctmr_run, capsys, tmp_path):
    import shutil

    out, summary = ctmr_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "report.html").unlink()
    code, stdout, err = run_cli(capsys, "report", str(copy))
    assert code == 0, err
    html = (copy / "report.html").read_text()
    assert f"{summary['segmentation'][FCN]['dice']['mean']:.3f}" in html
    code, _, err = run_cli(capsys, "report", str(tmp_path))
    assert code == 2 and "not a finished" in err
    # --resume of a finished run trains nothing and keeps its results
    before = (copy / "table.json").read_text()
    code, stdout, err = run_cli(capsys, "recipe", "ctmr-cgan", "--out", str(copy), "--resume")
    assert code == 0 and "already finished" in stdout and (copy / "table.json").read_text() == before


def test_gan_fold_resumes_from_its_last_checkpoint(ctmr_data, tmp_path):
    cfg = tiny_cfg(ctmr_data, gan_epochs=2)
    gan, _, _ = cfg.resolved()
    gan.run.steps_per_epoch, gan.sample_every = 3, 0
    cases = open_cohort(ctmr_data).cases
    splits = subject_kfold(cases, 3, 0)
    first = train_synthesis_fold(gan, cases, splits, 0, tmp_path)
    assert first["epochs"] == 2
    before = json.loads((tmp_path / "metrics.json").read_text())
    gan.run.epochs = 3
    again = train_synthesis_fold(gan, cases, splits, 0, tmp_path)
    after = json.loads((tmp_path / "metrics.json").read_text())
    assert again["epochs"] == 3 and after[:2] == before and len(after) == 3


def test_derived_volumes_errors(ctmr_data, ctmr_run, tmp_path):
    out, _ = ctmr_run
    cases = open_cohort(ctmr_data).cases
    stray = tmp_path / "derived" / "no_such_case"
    stray.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), stray / "dwi_gen.nii.gz")
    with pytest.raises(DataError, match="not in the data set"):
        attach_derived(cases, tmp_path / "derived")
    wrong = tmp_path / "wrong" / cases[0].id
    wrong.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), wrong / "dwi_gen.nii.gz")
    with pytest.raises(DataError, match="dwi_gen"):
        attach_derived(cases, tmp_path / "wrong")
    with pytest.raises(DataError, match="already has"):
        attach_derived(attach_derived(cases, out / "dwi_gen"), out / "dwi_gen")


def test_shipped_configs_match_the_code():
    assert to_dict(load_ctmr_config("tiny")) == to_dict(tiny_config())
    assert to_dict(load_ctmr_config("paper")) == to_dict(paper_config())
    paper = paper_config().synthesis
    assert (paper.lambda_l1, paper.optim.lr, tuple(paper.optim.betas), paper.run.batch_size, paper.run.epochs) == (100.0, 2e-4,
                                                                                               (0.5, 0.999), 1, 200)
    assert paper.generator.ngf == 64 and paper.generator.n_blocks == 9 and paper.discriminator.n_layers == 3


def test_describe_prints_the_paper_parameter_counts(capsys):
    code, out, _ = run_cli(capsys, "describe")
    assert code == 0
    assert "11,378,177" in out and "2,766,913" in out  # generator 5->1, PatchGAN on 6 channels
    assert "1x30x30" in out and "48,941,152" in out and "48,941,157" in out


def test_recipe_bad_input_one_line_and_nothing_written(capsys, tmp_path, toy_cases):
    # a data set without DWI: the cGAN has no target
    no_dwi = write_cohort(toy_cases, tmp_path / "no_dwi", layout="isles2018",
                          modalities=["ct", "ctp", "cbf", "cbv", "mtt", "tmax"])
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "recipe", "ctmr-cgan", "--data", str(no_dwi), "--out", str(out))
    assert code == 2 and err.startswith("error: ") and "dwi" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    code, _, err = run_cli(capsys, "recipe", "ctmr-cgan", "--data", str(tmp_path / "missing"), "--out", str(out))
    assert code == 2 and "not found" in err and not out.exists()
    code, _, err = run_cli(capsys, "recipe", "ctmr-cgan", "--config", str(tmp_path / "nope.yaml"),
                           "--data", str(no_dwi))
    assert code == 2 and "nope.yaml" in err
