"""DICOM in: a phantom case written as DICOM series (uneven CTP frames, an oblique variant) comes
back through `strokesynth import` with its voxels, geometry and frame times; bad folders are one
line each."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import run_cli

pydicom = pytest.importorskip("pydicom", reason="DICOM import needs pydicom (the [dicom] extra)")

from strokesynth.data.case import Case  # noqa: E402
from strokesynth.data.volume import Volume  # noqa: E402
from strokesynth.io.dicom_write import write_dicom_study  # noqa: E402
from strokesynth.perfusion.maps import analyze_ctp  # noqa: E402


def _tilted(affine: np.ndarray, degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    tilt = np.array([[1, 0, 0, 0], [0, np.cos(a), -np.sin(a), 0], [0, np.sin(a), np.cos(a), 0], [0, 0, 0, 1.0]])
    return tilt @ affine


@pytest.fixture(scope="module")
def study(tiny_phantom, tmp_path_factory):
    """The first phantom scan as a DICOM study: CT, CBF, and a CTP kept every frame for 30 s and
    every third frame after (uneven), with the truth it was written from."""
    src = tiny_phantom[0].case
    ctp = src["ctp"]
    dt = ctp.dt
    keep = np.array([i for i in range(ctp.shape[3]) if i * dt <= 30 or (i - int(30 / dt)) % 3 == 0])
    case = Case("p", "p", {"ct": src["ct"], "cbf": src["cbf"],
                           "ctp": Volume(ctp.array[..., keep], ctp.affine, dt=dt)})
    root = tmp_path_factory.mktemp("dicom") / "study"
    write_dicom_study(case, root, frame_times=keep * dt + 0.37)
    return root, case, keep * dt


def test_import_gives_back_the_voxels_geometry_and_uneven_frame_times(study, tmp_path, capsys):
    root, case, times = study
    files = [p for p in root.rglob("*") if p.is_file()]
    assert all("." not in p.name for p in files)  # random names: nothing read from them
    (root / "README.txt").write_text("not DICOM")
    code, out, err = run_cli(capsys, "import", str(root), "--out", str(tmp_path / "ds"))
    assert code == 0, err
    assert "wrote case PHANTOM01_20260101 (cbf, ct, ctp)" in out and "1 file(s) left out" in out
    folder = tmp_path / "ds" / "PHANTOM01_20260101"
    ct = nib.load(folder / "ct.nii.gz")
    np.testing.assert_array_equal(np.asarray(ct.dataobj), case["ct"].array)
    np.testing.assert_allclose(ct.affine, case["ct"].affine, atol=1e-4)
    ctp = nib.load(folder / "ctp.nii.gz")
    np.testing.assert_array_equal(np.asarray(ctp.dataobj), case["ctp"].array)
    side = json.loads((folder / "ctp.json").read_text())
    np.testing.assert_allclose(side["FrameTimesStart"], times - times[0], atol=1e-4)
    assert side["SeriesDescription"] == "CTP brain perfusion" and side["Frames"] == len(times)
    cbf = np.asarray(nib.load(folder / "cbf.nii.gz").dataobj)
    step = max(0.01, float(np.abs(case["cbf"].array).max()) / 32000.0)  # the writer's slope
    np.testing.assert_allclose(cbf, case["cbf"].array, atol=0.51 * step)
    # the analysis reads the frame times from the sidecar and resamples the uneven frames
    from strokesynth.io import open_cohort

    imported = open_cohort(tmp_path / "ds").cases[0]
    result = analyze_ctp(imported["ctp"])
    assert result.info["frame_timing"]["uneven"] and result.info["frame_timing"]["source"].startswith("sidecar")


def test_an_oblique_stack_keeps_its_affine(tiny_phantom, tmp_path, capsys):
    src = tiny_phantom[0].case
    affine = _tilted(src["ct"].affine, 15.0)
    case = Case("o", "o", {"ct": Volume(src["ct"].array, affine, disk_dtype=np.int16),
                           "ctp": Volume(src["ctp"].array[..., :14], affine, dt=src["ctp"].dt)})
    write_dicom_study(case, tmp_path / "dcm")
    code, _, err = run_cli(capsys, "import", str(tmp_path / "dcm"), "--out", str(tmp_path / "ds"), "--case", "tilted")
    assert code == 0, err
    for key in ("ct", "ctp"):
        image = nib.load(tmp_path / "ds" / "tilted" / f"{key}.nii.gz")
        np.testing.assert_allclose(image.affine, affine, atol=1e-4, err_msg=key)
    assert abs(affine[1, 2]) > 0.5  # z has a y component: the stack is tilted


def _ctp_files(root: Path) -> list[Path]:
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if "TemporalPositionIdentifier" in ds:
            out.append(path)
    return out


@pytest.mark.parametrize("how", ["missing_slice", "moved_slice", "mixed_geometry", "compressed", "no_decoder", "no_ct",
                                 "dicomdir"])
def test_bad_dicom_folders_are_one_line_and_write_nothing(tiny_phantom, tmp_path, capsys, how):
    src = tiny_phantom[0].case
    case = Case("b", "b", {"ct": src["ct"], "ctp": Volume(src["ctp"].array[..., :14], src["ctp"].affine,
                                                          dt=src["ctp"].dt)})
    root = tmp_path / "dcm"
    write_dicom_study(case, root)
    files = _ctp_files(root)
    needle = {"missing_slice": "different numbers of images", "moved_slice": "different numbers of images",
              "mixed_geometry": "two series under one Series Instance UID", "compressed": "compressed transfer syntax JPEG 2000",
              "no_decoder": "no decoder installed (pip install pylibjpeg",
              "no_ct": "no CT image series found", "dicomdir": "DICOMDIR"}[how]
    if how == "missing_slice":
        files[7].unlink()
    elif how == "moved_slice":
        ds = pydicom.dcmread(files[3])
        ds.ImagePositionPatient = [float(v) + (2.5 if k == 2 else 0.0) for k, v in enumerate(ds.ImagePositionPatient)]
        ds.save_as(files[3])
    elif how == "mixed_geometry":
        ds = pydicom.dcmread(files[5])
        ds.PixelSpacing = [float(v) * 2 for v in ds.PixelSpacing]
        ds.save_as(files[5])
    elif how in ("compressed", "no_decoder"):
        from pydicom.pixels import get_decoder

        syntax = pydicom.uid.JPEG2000Lossless if how == "compressed" else pydicom.uid.HTJ2KLossless
        if how == "no_decoder" and get_decoder(syntax).is_available:
            pytest.skip("an HTJ2K decoder is installed here: the missing-decoder line cannot be shown")
        ds = pydicom.dcmread(files[0])
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51" + bytes(64)])
        ds.save_as(files[0], enforce_file_format=True)
    elif how in ("no_ct", "dicomdir"):
        for path in (p for p in root.rglob("*") if p.is_file()):
            path.unlink()
        if how == "no_ct":
            (root / "notes.txt").write_text("nothing here")
        else:
            ds = pydicom.Dataset()
            ds.SOPClassUID = "1.2.840.10008.1.3.10"
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            ds.DirectoryRecordSequence = pydicom.Sequence([])
            meta = pydicom.dataset.FileMetaDataset()
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
            ds.file_meta = meta
            ds.save_as(root / "DICOMDIR", enforce_file_format=True)
    out = tmp_path / "ds"
    code, _, err = run_cli(capsys, "import", str(root), "--out", str(out), "--case", "x")
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert needle in lines[0], lines[0]
    assert not out.exists()


def test_predict_takes_a_dicom_folder_directly(study, trained, tmp_path, capsys):
    """predict --input DICOM_DIR: the study is imported to a temporary case; the maps the model takes
    are computed from the CTP (uneven frames resampled) and the mask lands on the CT's grid."""
    root, case, _ = study
    run = trained[0] / "run"
    code, out, err = run_cli(capsys, "predict", "--model", str(run), "--input", str(root), "--out", str(tmp_path / "pred"),
                             "--precision", "fp32")
    assert code == 0, err
    assert "imported the DICOM study" in out and "computed from the raw 4D CTP" in out
    mask = nib.load(tmp_path / "pred" / "PHANTOM01_20260101" / "mask.nii.gz")
    assert mask.shape == case["ct"].spatial_shape
    np.testing.assert_allclose(mask.affine, case["ct"].affine, atol=1e-4)
    facts = json.loads((tmp_path / "pred" / "PHANTOM01_20260101" / "maps" / "perfusion.json").read_text())
    assert facts["frame_timing"]["uneven"]


def test_predict_writes_a_dicom_seg_that_lands_on_the_source_images(study, trained, tmp_path, capsys):
    hd = pytest.importorskip("highdicom", reason="DICOM SEG output needs highdicom (the [dicom] extra)")
    root, case, _ = study
    run = trained[0] / "run"
    code, out, err = run_cli(capsys, "predict", "--model", str(run), "--input", str(root), "--out", str(tmp_path / "pred"),
                             "--precision", "fp32", "--dicom-out", str(tmp_path / "dcm_out"))
    assert code == 0, err
    assert "wrote the DICOM SEG (core, hypoperfusion)" in out
    seg = hd.seg.segread(tmp_path / "dcm_out" / "PHANTOM01_20260101_seg.dcm")
    # the source CT series, as written: SOP UID -> z (its images sorted by position)
    sources = {}
    for path in (p for p in root.rglob("*") if p.is_file() and p.suffix != ".txt"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds.SeriesDescription == "NCCT head":
            sources[str(ds.SOPInstanceUID)] = float(ds.ImagePositionPatient[2])
    order = sorted(sources, key=lambda uid: sources[uid])
    referenced = {str(item.ReferencedSOPInstanceUID) for f in seg.PerFrameFunctionalGroupsSequence
                  for item in f.DerivationImageSequence[0].SourceImageSequence}
    assert referenced <= set(sources) and len(referenced) == len(sources)  # every frame on an existing CT image
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=order, segment_numbers=[1, 2])
    mask = np.asarray(nib.load(tmp_path / "pred" / "PHANTOM01_20260101" / "mask.nii.gz").dataobj) > 0
    hypo = np.asarray(nib.load(tmp_path / "pred" / "PHANTOM01_20260101" / "hypoperfusion.nii.gz").dataobj) > 0
    np.testing.assert_array_equal(np.transpose(pixels[..., 0], (2, 1, 0)) > 0, mask)
    np.testing.assert_array_equal(np.transpose(pixels[..., 1], (2, 1, 0)) > 0, hypo)
    first = next(p for p in root.rglob("*") if p.is_file() and p.suffix != ".txt")
    assert seg.FrameOfReferenceUID == pydicom.dcmread(first).FrameOfReferenceUID
    sc = pydicom.dcmread(tmp_path / "dcm_out" / "PHANTOM01_20260101_report.dcm")
    assert sc.Modality == "OT" or sc.SOPClassUID.name.startswith("Secondary Capture")
    assert sc.StudyInstanceUID == seg.StudyInstanceUID
    # without a DICOM input there is nothing for a SEG to reference
    code, _, err = run_cli(capsys, "predict", "--model", str(run), "--input", str(trained[1]), "--out",
                           str(tmp_path / "p2"), "--dicom-out", str(tmp_path / "d2"))
    assert code == 2 and "needs --input to be a folder of DICOM files" in err
    assert not (tmp_path / "p2").exists() and not (tmp_path / "d2").exists()


def test_dcm2niix_reads_the_same_frames_times_and_geometry(tiny_phantom, tmp_path, capsys):
    """The reference converter on the same oblique, unevenly sampled series: the same number of
    frames, the same frame times, and the same voxels at the same scanner positions (dcm2niix stores
    the rows flipped, so the affines differ by that flip, not in geometry)."""
    import shutil
    import subprocess

    try:  # the PyPI wheel ships the binary inside the package (not always on PATH: .venv/bin/python -m pytest)
        import dcm2niix

        exe = str(dcm2niix.bin)
    except ImportError:
        exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix is not installed (pip install dcm2niix)")
    src = tiny_phantom[0].case
    affine = _tilted(src["ct"].affine, 15.0)
    keep = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 19, 22])
    case = Case("o", "o", {"ct": Volume(src["ct"].array, affine, disk_dtype=np.int16),
                           "ctp": Volume(src["ctp"].array[..., keep], affine, dt=src["ctp"].dt)})
    write_dicom_study(case, tmp_path / "dcm", frame_times=keep * src["ctp"].dt)
    (tmp_path / "ref").mkdir()
    subprocess.run([exe, "-z", "y", "-b", "y", "-f", "%d", "-o", str(tmp_path / "ref"), str(tmp_path / "dcm")],
                   check=True, capture_output=True)
    code, _, err = run_cli(capsys, "import", str(tmp_path / "dcm"), "--out", str(tmp_path / "ours"), "--case", "o")
    assert code == 0, err
    for ours_name, ref_name in (("ct", "NCCT_head"), ("ctp", "CTP_brain_perfusion")):
        ours, ref = nib.load(tmp_path / "ours" / "o" / f"{ours_name}.nii.gz"), nib.load(tmp_path / "ref" / f"{ref_name}.nii.gz")
        assert ours.shape == ref.shape, ours_name
        voxel_map = np.linalg.inv(ref.affine) @ ours.affine  # our voxel index -> dcm2niix's
        np.testing.assert_allclose(voxel_map, np.round(voxel_map), atol=1e-3)
        ijk = np.indices(ours.shape[:3]).reshape(3, -1)
        mapped = np.rint(voxel_map[:3, :3] @ ijk + voxel_map[:3, 3:]).astype(int)
        a = np.asarray(ours.dataobj).reshape(int(np.prod(ours.shape[:3])), -1)
        b = np.asarray(ref.dataobj)[mapped[0], mapped[1], mapped[2]].reshape(a.shape)
        np.testing.assert_array_equal(a, b, err_msg=ours_name)
    ours_times = json.loads((tmp_path / "ours" / "o" / "ctp.json").read_text())["FrameTimesStart"]
    ref_times = json.loads((tmp_path / "ref" / "CTP_brain_perfusion.json").read_text())["FrameTimesStart"]
    np.testing.assert_allclose(ours_times, ref_times, atol=1e-3)


def test_an_enhanced_multiframe_ctp_is_split_by_its_functional_groups(study, tmp_path, capsys):
    """The same uneven CTP as one Enhanced CT object: frames placed by their per-frame plane
    positions and times (Frame Content), the same volume and frame times as the classic series."""
    _, case, times = study
    write_dicom_study(case, tmp_path / "dcm", frame_times=times, enhanced=True)
    assert sum(1 for p in (tmp_path / "dcm").rglob("*") if p.is_file()) == case["ct"].shape[2] * 2 + 1
    code, _, err = run_cli(capsys, "import", str(tmp_path / "dcm"), "--out", str(tmp_path / "ds"), "--case", "e")
    assert code == 0, err
    ctp = nib.load(tmp_path / "ds" / "e" / "ctp.nii.gz")
    np.testing.assert_array_equal(np.asarray(ctp.dataobj), case["ctp"].array)
    np.testing.assert_allclose(ctp.affine, case["ctp"].affine, atol=1e-4)
    side = json.loads((tmp_path / "ds" / "e" / "ctp.json").read_text())
    np.testing.assert_allclose(side["FrameTimesStart"], times - times[0], atol=1e-4)
