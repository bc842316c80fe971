"""ISLES'22 export is BIDS that pybids indexes with validation on; slabs are runs of one session."""

import json

import pytest

from strokesynth.io import open_cohort, write_cohort


def test_layout_names(tmp_path, toy_cases):
    out = write_cohort(toy_cases, tmp_path / "bids", layout="isles22")
    two = next(s for s in {c.subject for c in toy_cases} if sum(c.subject == s for c in toy_cases) == 2)
    label = "".join(ch for ch in two if ch.isalnum())
    dwis = sorted(p.name for p in (out / "rawdata" / f"sub-{label}").rglob("*_dwi.nii.gz"))
    assert dwis == [f"sub-{label}_ses-0001_run-1_dwi.nii.gz", f"sub-{label}_ses-0001_run-2_dwi.nii.gz"]
    assert len(list((out / "rawdata" / f"sub-{label}").iterdir())) == 1  # one visit, one session
    desc = json.loads((out / "derivatives" / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"]
    assert json.loads((out / "rawdata" / "dataset_description.json").read_text())["DatasetType"] == "raw"
    back = open_cohort(out)
    assert {c.id: c.subject for c in back} == {c.id: c.subject for c in toy_cases}
    assert sorted(back.cases[0].modalities) == sorted(toy_cases[0].modalities)


def test_pybids_indexes_the_export(tmp_path, toy_cases):
    bids = pytest.importorskip("bids", reason="pybids (optional extra 'bids') is not installed")
    out = write_cohort(toy_cases, tmp_path / "bids", layout="isles22")
    layout = bids.BIDSLayout(out / "rawdata", validate=True, derivatives=out / "derivatives")
    assert len(layout.get_subjects()) == len({c.subject for c in toy_cases})
    dwis = layout.get(suffix="dwi", extension=".nii.gz", scope="raw")
    assert len(dwis) == len(toy_cases)
    masks = layout.get(suffix="msk", extension=".nii.gz", scope="derivatives")
    assert len(masks) == sum(c.label is not None for c in toy_cases)
    assert all(m.get_entities()["session"] == "0001" and "subject" in m.get_entities() for m in masks)
    assert {m.get_entities().get("run") for m in masks} >= {1, 2}
    assert len(layout.get(suffix="cbf", scope="derivatives", extension=".nii.gz")) == len(toy_cases)


def test_pybids_indexes_the_real_case(tmp_path, isles22_dir):
    """The real ISLES'22 case, re-written: DWI in dwi/, FLAIR in anat/, ADC and the mask as derivatives."""
    bids = pytest.importorskip("bids", reason="pybids (optional extra 'bids') is not installed")
    real = write_cohort(open_cohort(isles22_dir).cases, tmp_path / "real", layout="isles22")
    layout = bids.BIDSLayout(real / "rawdata", validate=True, derivatives=real / "derivatives")
    assert layout.get_subjects() == ["strokecase0009"]
    assert {f.get_entities()["suffix"] for f in layout.get(extension=".nii.gz")} == {"dwi", "FLAIR", "adc", "msk"}
