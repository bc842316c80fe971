"""Every reader round-trips shape, dtype policy, affine and values, on toy and real data."""

import nibabel as nib
import numpy as np
import pytest

from strokesynth.io import detect_layout, open_cohort, read_volume, write_cohort, write_volume


def assert_same_cases(read, original, keys=None):
    by_id = {c.id: c for c in original}
    assert sorted(c.id for c in read) == sorted(by_id)
    for case in read:
        ref = by_id[case.id]
        assert case.subject == ref.subject
        for key in keys or ref.modalities:
            a, b = case[key], ref[key]
            assert a.shape == b.shape, key
            assert np.array_equal(a.affine, b.affine), key
            assert a.array.dtype == b.array.dtype, key
            assert np.array_equal(a.array, b.array), key
            assert a.dt == b.dt, key


@pytest.mark.parametrize("layout", ["isles2018", "plain", "nnunet"])
def test_toy_roundtrip(tmp_path, toy_cases, layout):
    out = write_cohort(toy_cases, tmp_path / layout, layout=layout)
    assert detect_layout(out) == layout
    cohort = open_cohort(out)
    assert cohort.layout == layout and not cohort.problems
    keys = ["ct", "cbf", "cbv", "mtt", "tmax", "lesion"] if layout == "nnunet" else None  # CTP inputs only
    assert_same_cases(cohort.cases, toy_cases, keys)
    # reading is lazy: nothing in memory after opening
    assert all(v.is_lazy for c in cohort for v in c.modalities.values())


def test_isles2018_files_and_ctp(isles2018_dir, toy_cases):
    case_dir = isles2018_dir / toy_cases[0].id
    names = sorted(p.name.split(".")[4] for p in case_dir.iterdir())
    assert names == sorted(["CT", "CT_4DPWI", "CT_CBF", "CT_CBV", "CT_MTT", "CT_Tmax", "OT", "MR_DWI"])
    ctp_file = next(case_dir.glob("SMIR.Brain.XX.O.CT_4DPWI.*/*.nii"))
    img = nib.load(str(ctp_file))
    assert img.header.get_data_dtype() == np.int16  # the toy CTP is integral HU
    assert img.header.get_zooms()[3] == pytest.approx(2.0)
    case = open_cohort(isles2018_dir)[toy_cases[0].id]
    assert case["ctp"].dt == pytest.approx(2.0) and case["ctp"].ndim == 4


def test_slab_reading_matches_full(isles2018_dir, toy_cases):
    case = open_cohort(isles2018_dir)[toy_cases[0].id]
    for key in ("ctp", "cbf", "lesion"):
        full = case[key].array
        assert np.array_equal(case[key].slab(1), full[:, :, 1])
        assert np.array_equal(case[key].slab(slice(0, 2)), full[:, :, 0:2])


def test_conversion_chain(tmp_path, isles2018_dir, toy_cases):
    nn = write_cohort(open_cohort(isles2018_dir).cases, tmp_path / "nn", layout="nnunet", modalities=["ct", "cbf", "tmax"])
    back = write_cohort(open_cohort(nn).cases, tmp_path / "back", layout="plain")
    cohort = open_cohort(back)
    assert_same_cases(cohort.cases, toy_cases, ["ct", "cbf", "tmax", "lesion"])
    assert sorted(cohort.cases[0].modalities) == ["cbf", "ct", "lesion", "tmax"]


def test_real_isles22_case(tmp_path, isles22_dir):
    cohort = open_cohort(isles22_dir)
    assert cohort.layout == "isles22" and len(cohort) == 1
    case = cohort.cases[0]
    assert case.id == "sub-strokecase0009_ses-0001" and case.subject == "sub-strokecase0009"
    assert sorted(case.modalities) == ["adc", "dwi", "flair", "lesion"]
    assert case["flair"].shape == (512, 512, 29) and "flair" in case.own_grid
    assert case["dwi"].spacing == pytest.approx((2.0, 2.0, 2.0), abs=1e-3)
    assert case["dwi"].meta["sidecar"]["Modality"] == "MR"
    assert 0 < case.lesion_volume_ml() < 100
    for layout in ("isles22", "plain"):
        out = open_cohort(write_cohort(cohort.cases, tmp_path / layout, layout=layout))
        assert_same_cases(out.cases, cohort.cases)
        again = out.cases[0]
        assert "flair" in again.own_grid
        for key in case.modalities:
            assert again[key].disk_dtype == case[key].disk_dtype
        assert again["dwi"].meta["sidecar"] == case["dwi"].meta["sidecar"]
    # nnU-Net needs one grid: the default export leaves FLAIR out, asking for it fails clearly
    nn = open_cohort(write_cohort(cohort.cases, tmp_path / "nn", layout="nnunet"))
    assert sorted(nn.cases[0].modalities) == ["adc", "dwi", "lesion"]
    from strokesynth.errors import OutputError

    with pytest.raises(OutputError, match="own grid"):
        write_cohort(cohort.cases, tmp_path / "nn2", layout="nnunet", modalities=["dwi", "flair"])
    assert not (tmp_path / "nn2").exists()


def test_real_affine_survives_nifti_roundtrip(tmp_path, isles22_dir):
    src = next((isles22_dir / "rawdata").rglob("*_dwi.nii.gz"))
    vol = read_volume(src)
    out = write_volume(vol, tmp_path / "dwi.nii.gz")
    again = read_volume(out)
    assert np.array_equal(again.affine, vol.affine)
    assert np.array_equal(again.array, vol.array)
    assert np.allclose(nib.load(str(out)).affine, nib.load(str(src)).affine, atol=1e-6)


def test_nnunet_dataset_json(tmp_path, toy_cases):
    import json

    out = write_cohort(toy_cases, tmp_path / "Dataset001_Toy", layout="nnunet", modalities=["ct", "dwi"])
    spec = json.loads((out / "dataset.json").read_text())
    assert spec["channel_names"] == {"0": "ct", "1": "dwi"}
    assert spec["numTraining"] == len(toy_cases) and spec["file_ending"] == ".nii.gz"
    assert (out / "imagesTr" / f"{toy_cases[0].id}_0001.nii.gz").exists()
    # nnU-Net style channel names with capitals read back
    spec["channel_names"] = {"0": "CT", "1": "DWI"}
    (out / "dataset.json").write_text(json.dumps(spec))
    assert sorted(open_cohort(out).cases[0].modalities) == ["ct", "dwi", "lesion"]


def test_subjects_survive_every_layout(tmp_path, toy_cases):
    subjects = {c.id: c.subject for c in toy_cases}
    assert len(set(subjects.values())) < len(subjects)  # some subject has two slabs
    for layout in ("isles2018", "plain", "nnunet"):
        cohort = open_cohort(write_cohort(toy_cases, tmp_path / layout, layout=layout))
        assert {c.id: c.subject for c in cohort} == subjects
