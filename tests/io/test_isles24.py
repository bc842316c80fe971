"""The ISLES'24 release layout: derivatives co-registered to the NCCT, both sessions one case."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED, run_cli

#: plain-layout key -> (session, sub-folder, ISLES'24 suffix)
_PLACES = {"ctp": ("ses-01", "", "ctp"), "cbf": ("ses-01", "perfusion-maps", "cbf"),
           "cbv": ("ses-01", "perfusion-maps", "cbv"), "mtt": ("ses-01", "perfusion-maps", "mtt"),
           "tmax": ("ses-01", "perfusion-maps", "tmax"), "dwi": ("ses-02", "", "dwi"),
           "lesion": ("ses-02", "", "lesion-msk")}


def isles24_tree(plain: Path, dest: Path, *, maps: bool = True) -> Path:
    """Lay a plain-layout data set out as the ISLES'24 release: subject k's NCCT in raw_data/ (odd k)
    or derivatives/ (even k), the organisers' sample names (no ``space-ncct``) for the first subject."""
    for k, case in enumerate(sorted(p for p in plain.iterdir() if p.is_dir()), 1):
        sub = f"sub-stroke{k:04d}"
        space = "" if k == 1 else "_space-ncct"
        ncct_tree = "raw_data" if k % 2 else "derivatives"
        (dest / ncct_tree / sub / "ses-01").mkdir(parents=True, exist_ok=True)
        shutil.copy(case / "ct.nii.gz", dest / ncct_tree / sub / "ses-01" / f"{sub}_ses-01_ncct.nii.gz")
        for key, (ses, folder, suffix) in _PLACES.items():
            if (case / f"{key}.nii.gz").exists() and (maps or key not in ("cbf", "cbv", "mtt", "tmax")):
                target = dest / "derivatives" / sub / ses / folder
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(case / f"{key}.nii.gz", target / f"{sub}_{ses}{space}_{suffix}.nii.gz")
    return dest


def test_read_check_and_convert(tmp_path, capsys, trained):
    _, full, _ = trained
    tree = isles24_tree(full, tmp_path / "isles24")
    code, out, err = run_cli(capsys, "check", str(tree))
    assert code == 0, out + err
    assert "layout    isles24" in out and "no problems found" in out
    assert "lesion: taken from derivatives/sub-*/ses-02/sub-*_ses-02_space-ncct_lesion-msk.nii.gz" in out
    assert "ct: taken from raw_data/sub-*/ses-01/sub-*_ses-01_ncct.nii.gz" in out
    from strokesynth.io import open_cohort

    cohort = open_cohort(tree)
    assert cohort.layout == "isles24" and [c.id for c in cohort.cases][0] == "sub-stroke0001"
    case = cohort.cases[0]
    assert case["lesion"].meta["session"] == "ses-02" and case["ctp"].meta["session"] == "ses-01"
    assert case.meta["files"]["dwi"].endswith("sub-stroke0001_ses-02_dwi.nii.gz")
    code, _, err = run_cli(capsys, "convert", str(tree), str(tmp_path / "plain"), "--to", "plain")
    assert code == 0, err
    plain_case = tmp_path / "plain" / "sub-stroke0001"
    ref = sorted(p for p in full.iterdir() if p.is_dir())[0]
    import nibabel as nib

    for key in ("ct", "ctp", "lesion", "tmax"):
        a = np.asanyarray(nib.load(str(plain_case / f"{key}.nii.gz")).dataobj)
        b = np.asanyarray(nib.load(str(ref / f"{key}.nii.gz")).dataobj)
        assert np.array_equal(a, b), key


def test_the_space_ncct_file_wins_over_the_sample_name(tmp_path, capsys, trained):
    _, full, _ = trained
    tree = isles24_tree(full, tmp_path / "isles24")
    ses2 = tree / "derivatives" / "sub-stroke0002" / "ses-02"
    shutil.copy(ses2 / "sub-stroke0002_ses-02_space-ncct_lesion-msk.nii.gz", ses2 / "sub-stroke0002_ses-02_lesion-msk.nii.gz")
    from strokesynth.io import open_cohort

    case = open_cohort(tree)["sub-stroke0002"]
    assert case.meta["files"]["lesion"].endswith("_space-ncct_lesion-msk.nii.gz")


def test_predict_computes_the_maps_of_a_subject_without_them(tmp_path, capsys, trained):
    root, full, _ = trained
    tree = isles24_tree(full, tmp_path / "isles24", maps=False)
    code, text, err = run_cli(capsys, "predict", "--model", str(root / "run"), "--input", str(tree), "--out",
                              str(tmp_path / "p"), "--precision", "fp32")
    assert code == 0, err
    assert "computed from the raw 4D CTP" in text
    rows = json.loads((tmp_path / "p" / "volumes.json").read_text())
    assert [r["case"] for r in rows][0] == "sub-stroke0001" and all(r["maps"] == "computed" for r in rows)


@pytest.mark.parametrize("how", ["no_ncct", "no_ctp_no_maps", "wrong_subject"])
def test_bad_trees_are_one_line(tmp_path, capsys, trained, how):
    _, full, _ = trained
    tree = isles24_tree(full, tmp_path / "isles24")
    sub = tree / "derivatives" / "sub-stroke0002"
    if how == "no_ncct":
        (sub / "ses-01" / "sub-stroke0002_ses-01_ncct.nii.gz").unlink()
        words = "missing ncct"
    elif how == "no_ctp_no_maps":
        (sub / "ses-01" / "sub-stroke0002_ses-01_space-ncct_ctp.nii.gz").unlink()
        shutil.rmtree(sub / "ses-01" / "perfusion-maps")
        words = "missing cbf, cbv, mtt, tmax (or the ctp"
    else:
        shutil.copy(sub / "ses-02" / "sub-stroke0002_ses-02_space-ncct_dwi.nii.gz",
                    tree / "derivatives" / "sub-stroke0003" / "ses-02" / "sub-stroke0002_ses-02_space-ncct_dwi.nii.gz")
        words = "belongs to sub-stroke0002 but lies in sub-stroke0003"
    code, _, err = run_cli(capsys, "convert", str(tree), str(tmp_path / "out"), "--to", "plain")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and words in lines[0], err
    assert not (tmp_path / "out").exists()


def test_the_organisers_sample_lists_what_is_missing(capsys):
    sample = SHARED / "isles24"
    if not sample.is_dir():
        pytest.skip(f"ISLES'24 example masks not available ({sample} absent: fresh clone without ../shared)")
    code, out, err = run_cli(capsys, "check", str(sample))
    assert code == 1 and "Traceback" not in err
    assert "layout    isles24" in out and out.count("missing ncct") == 2


def test_convert_writes_the_isles24_tree_and_reads_it_back(tmp_path, capsys, trained):
    """plain -> isles24 -> plain keeps every voxel; the written tree has the release's names."""
    import nibabel as nib

    _, full, _ = trained
    code, _, err = run_cli(capsys, "convert", str(full), str(tmp_path / "i24"), "--to", "isles24")
    assert code == 2 and "no ISLES'24 file name for flair" in err  # the release has no FLAIR
    assert not (tmp_path / "i24").exists()
    code, _, err = run_cli(capsys, "convert", str(full), str(tmp_path / "i24"), "--to", "isles24",
                           "--modalities", "ct,ctp,cbf,cbv,mtt,tmax,dwi")
    assert code == 0, err
    cases = sorted(p.name for p in full.iterdir() if p.is_dir())
    subs = sorted(p.name for p in (tmp_path / "i24" / "derivatives").iterdir())
    assert len(subs) == len(cases) and all(s.startswith("sub-") for s in subs)
    first = tmp_path / "i24" / "derivatives" / subs[0]
    assert (first / "ses-02" / f"{subs[0]}_ses-02_space-ncct_lesion-msk.nii.gz").is_file()
    assert (first / "ses-01" / "perfusion-maps" / f"{subs[0]}_ses-01_space-ncct_cbf.nii.gz").is_file()
    assert (tmp_path / "i24" / "raw_data" / subs[0] / "ses-01" / f"{subs[0]}_ses-01_ncct.nii.gz").is_file()
    code, _, err = run_cli(capsys, "convert", str(tmp_path / "i24"), str(tmp_path / "back"), "--to", "plain")
    assert code == 0, err
    for case in cases:  # the case ids travel in strokesynth.json
        for key in ("ct", "ctp", "lesion", "cbf"):
            a = np.asanyarray(nib.load(str(tmp_path / "back" / case / f"{key}.nii.gz")).dataobj)
            b = np.asanyarray(nib.load(str(full / case / f"{key}.nii.gz")).dataobj)
            assert np.array_equal(a, b), (case, key)
