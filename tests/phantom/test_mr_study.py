"""Whole-brain MR studies of the phantom: labels, contrasts, skull stripping, layouts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from strokesynth.io import open_cohort
from strokesynth.io.integrity import check_dataset
from strokesynth.phantom import MR_LABELS, PhantomConfig, generate_mr_studies, write_mr_studies

PARENCHYMA = [MR_LABELS[k] for k in ("gm_right", "gm_left", "wm_right", "wm_left", "deep_grey_right",
                                     "deep_grey_left", "cerebellum", "brain_stem")]


def _config(subjects: int, healthy: int, size: int = 48) -> PhantomConfig:
    cfg = PhantomConfig(subjects=subjects, healthy=healthy, seed=2)
    cfg.mr.spacing_mm *= cfg.mr.size / size
    cfg.mr.size = size
    cfg.mr.sub_slices = 1
    return cfg


@pytest.fixture(scope="module")
def studies():
    cfg = _config(3, 1)
    cases, infos = generate_mr_studies(cfg)
    return cfg, cases, infos


def test_label_map_has_every_class_and_the_lesion_last(studies):
    _, cases, infos = studies
    assert MR_LABELS["lesion"] == max(MR_LABELS.values())
    for case, info in zip(cases, infos, strict=True):
        lab = case["anatomy"].array
        present = set(np.unique(lab).tolist())
        want = set(MR_LABELS.values()) - ({MR_LABELS["lesion"]} if info["healthy"] else set())
        assert want <= present, (case.id, want - present)
        assert ((lab == MR_LABELS["lesion"]) == (case["lesion"].array > 0)).all()
        # hemispheres are balanced, the brain mask holds every non-background label
        gm_r, gm_l = (lab == MR_LABELS["gm_right"]).sum(), (lab == MR_LABELS["gm_left"]).sum()
        assert 0.7 < gm_r / gm_l < 1.4
        assert ((lab > 0) <= (case["brain"].array > 0)).all()


def test_the_lesion_is_bright_on_dwi_and_dark_on_adc(studies):
    _, cases, infos = studies
    lesions = [(c, i) for c, i in zip(cases, infos, strict=True) if not i["healthy"]]
    assert lesions and all(i["lesion_ml"] > 0 for _, i in lesions)
    for case, _ in lesions:
        lab, les = case["anatomy"].array, case["lesion"].array > 0
        par = np.isin(lab, PARENCHYMA[:6])
        dwi, adc = case["dwi_brain"].array, case["adc_brain"].array
        # measured 1.39-1.56 (DWI) and 0.49-0.74 (ADC) at 128 px
        assert np.median(dwi[les]) > 1.2 * np.median(dwi[par]), case.id
        assert np.median(adc[les]) < 0.85 * np.median(adc[par]), case.id
        # ADC in physical units (1e-6 mm²/s): normal parenchyma about 700-900, CSF about 3000
        assert 600 < np.median(adc[par]) < 1000
        assert np.median(adc[np.isin(lab, [MR_LABELS["ventricles"]])]) > 1800


def test_skull_stripped_images_are_the_images_inside_the_brain_mask(studies):
    _, cases, _ = studies
    for case in cases:
        brain = case["brain"].array > 0
        for key in ("dwi", "adc", "flair", "t1"):
            assert np.array_equal(case[f"{key}_brain"].array, case[key].array * brain)
        # the head images hold signal outside the brain (scalp), the stripped ones none
        assert case["t1"].array[~brain].max() > 0 and case["t1_brain"].array[~brain].max() == 0


def test_ventricles_grow_with_the_age_like_enlargement():
    cfg = _config(0, 6, size=40)
    _, infos = generate_mr_studies(cfg)
    rho = stats.spearmanr([i["ventricle_enlarge"] for i in infos], [i["ventricle_ml"] for i in infos])[0]
    assert rho > 0.5, [(i["ventricle_enlarge"], i["ventricle_ml"]) for i in infos]


@pytest.mark.parametrize("layout", ["plain", "isles22"])
def test_written_in_both_layouts_read_back_and_checked(studies, tmp_path, layout):
    cfg, cases, infos = studies
    out = write_mr_studies(cases, infos, tmp_path / layout, cfg, layout=layout, figures=False)
    report = check_dataset(out)
    assert not report.problems, report.problems
    back = {c.id: c for c in open_cohort(out)}
    assert set(back) == {c.id for c in cases}
    for case in cases:
        got = back[case.id]
        assert set(got.modalities) == set(case.modalities)
        for key in ("anatomy", "lesion", "brain"):
            assert np.array_equal(got[key].array, case[key].array)
        assert np.allclose(got["dwi_brain"].array, case["dwi_brain"].array, rtol=1e-5)
    assert (out / "mr_phantom.json").exists()


def test_cli_writes_mr_studies(tmp_path):
    from click.testing import CliRunner

    from strokesynth.cli import cli

    out = tmp_path / "mr"
    res = CliRunner().invoke(cli, ["phantom", "--out", str(out), "--mr-study", "--layout", "isles22",
                                   "--subjects", "1", "--healthy", "1", "--size", "32", "--no-figures"])
    assert res.exit_code == 0, res.output
    assert "whole-brain MR studies (1 healthy)" in res.output and "lesions by size" in res.output
    assert (out / "rawdata").is_dir() and not check_dataset(out).problems
    assert len(list(out.rglob("*_dseg.nii.gz"))) == 2
