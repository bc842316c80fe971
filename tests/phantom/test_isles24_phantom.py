"""`phantom --layout isles24`: an ISLES'24 tree that the reader, `check`, the raw_data layout and the
perfusion analysis take, with the final infarct between the core and the hypoperfusion."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from strokesynth.io import open_cohort
from strokesynth.io.nifti import read_volume
from strokesynth.perfusion.case_maps import with_perfusion_maps
from strokesynth.phantom.isles24 import Isles24Geometry, write_isles24_phantom

from conftest import run_cli, tiny_phantom_config

GEOMETRY = Isles24Geometry(size=96, slices=12, slice_mm=4.0, frames=30, dt=1.5, factor=2)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    cfg = tiny_phantom_config(subjects=2, healthy=1, seed=11)
    root = tmp_path_factory.mktemp("isles24") / "release"
    write_isles24_phantom(cfg, root, GEOMETRY)
    return root


def test_the_tree_reads_as_isles24_with_both_sessions_and_the_clinical_tables(release):
    subs = sorted(p.name for p in (release / "derivatives").iterdir())
    assert subs == ["sub-stroke0001", "sub-stroke0002", "sub-stroke0003"]
    assert (release / "raw_data" / subs[0] / "ses-01" / f"{subs[0]}_ses-01_ncct.nii.gz").is_file()
    assert (release / "derivatives" / subs[0] / "ses-01" / "perfusion-maps"
            / f"{subs[0]}_ses-01_space-ncct_tmax.nii.gz").is_file()
    cohort = open_cohort(release)
    assert cohort.layout == "isles24" and len(cohort) == 3
    case = cohort.cases[0]
    assert {"ct", "cta", "ctp", "cbf", "cbv", "mtt", "tmax", "dwi", "adc", "lesion"} <= set(case.modalities)
    assert case["ct"].spatial_shape == (96, 96, 12) and case["ctp"].shape[3] == 30
    assert case["ct"].spacing[2] == pytest.approx(4.0) and case["ct"].spacing[0] == pytest.approx(230.4 / 96, rel=1e-3)
    assert case["dwi"].meta["session"] == "ses-02" and case["ctp"].meta["session"] == "ses-01"
    assert case["ctp"].meta["sidecar"]["FrameTimesStart"][1] == pytest.approx(1.5)
    assert case["ctp"].disk_dtype == np.int16
    clinical = case.meta["clinical"]
    assert set(clinical) == {"ses-01", "ses-02"} and clinical["ses-02"]["tici"] in ("2b-3", "0-2a")
    assert isinstance(clinical["ses-01"]["nihss_admission"], int)
    # the whole-brain label map a user would add (SynthSeg's): ses-02, its table named in the sidecar
    assert case["anatomy"].meta["session"] == "ses-02" and case["anatomy"].kind == "label"
    assert case["anatomy"].meta["sidecar"] == {"LabelTable": "phantom_ct"}
    assert case["anatomy"].same_grid(case["dwi"])


def test_the_label_map_holds_the_tissues_and_the_final_infarct_as_lesion(release):
    from strokesynth.data.label_maps import load_label_table

    table = load_label_table("phantom_ct")
    for case in open_cohort(release).cases:
        labels = np.asarray(case["anatomy"].array)
        classes = table.to_classes(labels, case.id)  # every id is in the table
        lesion = np.asarray(case["lesion"].array) > 0
        assert {table.classes[c] for c in np.unique(classes)} >= {"background", "csf", "gm", "wm"}
        # the final infarct inside the brain is the lesion class, and nothing else is
        np.testing.assert_array_equal(classes == table.lesion, lesion & (labels > 0))
        # the brain of the label map is where the follow-up DWI has its signal
        dwi = np.asarray(case["dwi"].array)
        assert dwi[labels > 0].mean() > 5 * max(dwi[labels == 0].mean(), 1e-6)


def test_the_final_infarct_lies_between_the_core_and_core_plus_penumbra(release):
    import json

    facts = json.loads((release / "groundtruth" / "phantom.json").read_text())["subjects"]
    for info in facts:
        sub = info["subject"]
        truth = {k: read_volume(release / "groundtruth" / sub / f"{k}.nii.gz", kind="label").array > 0
                 for k in ("core", "penumbra", "final")}
        lesion = read_volume(next((release / "derivatives" / sub / "ses-02").glob("*lesion-msk.nii.gz")),
                             kind="label").array > 0
        np.testing.assert_array_equal(lesion, truth["final"])
        # interpolated masks: the final infarct holds the core and stays within core + penumbra (to a voxel)
        assert (truth["core"] & ~truth["final"]).sum() <= 0.02 * max(1, truth["core"].sum())
        assert (truth["final"] & ~(truth["core"] | truth["penumbra"])).sum() <= 0.05 * max(1, truth["final"].sum())
        if info["healthy"]:
            assert not lesion.any()
    assert any(not i["healthy"] and i["final_ml"] > 0 for i in facts)


def test_check_summarises_the_clinical_tables_and_the_raw_layout_keeps_native_grids(release, capsys, tmp_path):
    code, out, err = run_cli(capsys, "check", str(release))
    assert code == 0, out + err
    assert "layout    isles24" in out and "clinical tables: 3/3 subject(s)" in out
    assert "clinical ses-01 nihss_admission: n=3" in out and "clinical ses-02 tici: n=3" in out
    assert "follow-up MRI (2-9 days after the CTP)" in out and "final infarct" in out
    # the phantom's raw_data holds the NCCT only (its scans share one space); a release's holds the
    # acute scans as acquired: copy them there under their raw names
    tree = tmp_path / "release"
    shutil.copytree(release, tree)
    for path in (tree / "derivatives").glob("sub-*/ses-01/**/*_space-ncct_*"):
        target = tree / "raw_data" / path.relative_to(tree / "derivatives")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target.with_name(target.name.replace("_space-ncct", "")))
    raw = open_cohort(tree, layout="isles24-raw")
    case = raw.cases[0]
    assert case.meta["layout"] == "isles24-raw" and "lesion" not in case and "dwi" not in case
    assert case.own_grid == frozenset({"cta", "ctp", "cbf", "cbv", "mtt", "tmax"}) & set(case.modalities)


def test_the_maps_computed_from_the_release_ctp_use_its_sidecar(release):
    case = open_cohort(release).cases[0].select(["ct", "ctp"])
    out, computed = with_perfusion_maps(case)
    assert computed.info["frame_timing"]["source"] == "sidecar FrameTimesStart (uniform)"
    brain = computed.brain
    assert brain.sum() > 1000
    assert np.median(out["cbf"].array[brain]) > 5


def test_bad_releases_are_one_line_each(release, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(release, broken)
    sub = "sub-stroke0002"
    # a subject without its CTP and a map: listed by check, exit 1
    (broken / "derivatives" / sub / "ses-01" / f"{sub}_ses-01_space-ncct_ctp.nii.gz").unlink()
    (broken / "derivatives" / sub / "ses-01" / "perfusion-maps" / f"{sub}_ses-01_space-ncct_cbf.nii.gz").unlink()
    # a truncated 4D file
    ctp = broken / "derivatives" / "sub-stroke0001" / "ses-01" / "sub-stroke0001_ses-01_space-ncct_ctp.nii.gz"
    data = gzip.decompress(ctp.read_bytes())
    ctp.write_bytes(gzip.compress(data[: len(data) // 2]))
    # half the sessions: subject 3 has no follow-up
    shutil.rmtree(broken / "derivatives" / "sub-stroke0003" / "ses-02")
    code, out, err = run_cli(capsys, "check", str(broken))
    assert code == 1, out
    assert f"{sub}: missing cbf (or the ctp they are computed from)" in out
    assert "sub-stroke0001_ses-01_space-ncct_ctp.nii.gz" in out and "truncated" in out
    assert "lacks adc, anatomy, dwi, lesion that other cases have" in out
    # a mask on another grid than the NCCT
    import nibabel as nib

    mask = broken / "derivatives" / "sub-stroke0003" / "ses-01" / "sub-stroke0003_ses-01_space-ncct_lvo-msk.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((40, 40, 6), np.uint8), np.diag([2.0, 2.0, 4.0, 1.0])), str(mask))
    code, out, err = run_cli(capsys, "check", str(broken))
    assert code == 1, out
    assert "sub-stroke0003_ses-01_space-ncct_lvo-msk.nii.gz: shape (40, 40, 6) of 'lvo' does not match" in out
    assert "Traceback" not in out + err


def test_a_release_ctp_without_frame_timing_is_one_line(release, tmp_path, capsys):
    import nibabel as nib

    src = release / "derivatives" / "sub-stroke0001" / "ses-01" / "sub-stroke0001_ses-01_space-ncct_ctp.nii.gz"
    image = nib.load(str(src))
    zooms = list(image.header.get_zooms())
    zooms[3] = 0.0
    image.header.set_zooms(zooms)
    bare = tmp_path / "ctp.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), image.affine, image.header), str(bare))
    code, out, err = run_cli(capsys, "perfusion", str(bare), "--out", str(tmp_path / "maps"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "ctp.nii.gz" in err and "give --frame-interval" in err
    assert not (tmp_path / "maps").exists()
