"""Bad input: one clear error line naming the file, non-zero exit, no traceback, nothing partial."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from strokesynth.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def first_file(root: Path, pattern: str) -> Path:
    return sorted(root.rglob(pattern))[0]


def convert_fails(capsys, src: Path, tmp_path: Path, *needles: str) -> None:
    dest = tmp_path / "out"
    code, _, err = run_cli(capsys, "convert", str(src), str(dest), "--to", "plain")
    assert_user_error(code, err, *needles)
    assert not dest.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no partial folder left


def test_missing_modality(capsys, tmp_path, isles2018_dir):
    folder = first_file(isles2018_dir, "SMIR.Brain.XX.O.CT_CBF.*")
    shutil.rmtree(folder)  # a map is missing, and the raw CTP it could be computed from too
    shutil.rmtree(first_file(folder.parent, "SMIR.Brain.XX.O.CT_4DPWI.*"))
    convert_fails(capsys, isles2018_dir, tmp_path, "missing modality CT_CBF", "CT_4DPWI", folder.parent.name)


def test_unknown_modality_isles2018(capsys, tmp_path, isles2018_dir):
    case_dir = first_file(isles2018_dir, "SMIR.Brain.XX.O.CT.*").parent
    (case_dir / "SMIR.Brain.XX.O.CT_PET.999").mkdir()
    convert_fails(capsys, isles2018_dir, tmp_path, "unknown ISLES 2018 modality 'CT_PET'", "SMIR.Brain.XX.O.CT_PET.999")


def test_unknown_modality_plain(capsys, tmp_path, plain_dir):
    src = first_file(plain_dir, "ct.nii.gz")
    shutil.copy(src, src.with_name("pet.nii.gz"))
    convert_fails(capsys, plain_dir, tmp_path, "unknown modality 'pet'", "pet.nii.gz")


def _rewrite(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> None:
    img = nib.load(str(path))
    nib.save(nib.Nifti1Image(array, img.affine if affine is None else affine), str(path))


def test_shape_mismatch(capsys, tmp_path, plain_dir):
    path = first_file(plain_dir, "cbf.nii.gz")
    arr = np.asanyarray(nib.load(str(path)).dataobj)
    _rewrite(path, np.zeros((arr.shape[0] + 2,) + arr.shape[1:], np.float32))
    convert_fails(capsys, plain_dir, tmp_path, "does not match", "cbf.nii.gz")


def test_affine_mismatch(capsys, tmp_path, plain_dir):
    path = first_file(plain_dir, "mtt.nii.gz")
    img = nib.load(str(path))
    affine = img.affine.copy()
    affine[0, 3] += 3.0
    _rewrite(path, np.asanyarray(img.dataobj), affine)
    convert_fails(capsys, plain_dir, tmp_path, "affine of 'mtt'", "mtt.nii.gz")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_inf(capsys, tmp_path, plain_dir, value):
    path = first_file(plain_dir, "cbv.nii.gz")
    arr = np.asanyarray(nib.load(str(path)).dataobj).astype(np.float32)
    arr[1, 1, 0] = value
    _rewrite(path, arr)
    convert_fails(capsys, plain_dir, tmp_path, "NaN/Inf", "cbv.nii.gz")
    code, out, _ = run_cli(capsys, "check", str(plain_dir))
    assert code == 1 and "NaN/Inf" in out and "cbv.nii.gz" in out


def test_truncated_gz(capsys, tmp_path, plain_dir):
    path = first_file(plain_dir, "dwi.nii.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    convert_fails(capsys, plain_dir, tmp_path, "truncated", "dwi.nii.gz")
    code, out, _ = run_cli(capsys, "check", str(plain_dir))
    assert code == 1 and "truncated" in out


def test_truncated_uncompressed(capsys, tmp_path, isles2018_dir):
    path = first_file(isles2018_dir, "SMIR.Brain.XX.O.CT_Tmax.*.nii")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    convert_fails(capsys, isles2018_dir, tmp_path, "truncated", path.name)


def test_non_nifti_file(capsys, tmp_path, plain_dir):
    path = first_file(plain_dir, "ct.nii.gz")
    path.write_bytes(gzip.compress(b"this is not an image"))
    convert_fails(capsys, plain_dir, tmp_path, "ct.nii.gz", "NIfTI")
    path.write_text("plain text, not even gzip")
    convert_fails(capsys, plain_dir, tmp_path, "ct.nii.gz")


def test_4d_where_3d_expected(capsys, tmp_path, plain_dir):
    path = first_file(plain_dir, "tmax.nii.gz")
    arr = np.asanyarray(nib.load(str(path)).dataobj)
    _rewrite(path, np.stack([arr, arr], axis=-1))
    convert_fails(capsys, plain_dir, tmp_path, "tmax.nii.gz", "3D")


def test_one_slice_volume(capsys, tmp_path, plain_dir):
    case_dir = first_file(plain_dir, "ct.nii.gz").parent
    for path in case_dir.glob("*.nii.gz"):
        img = nib.load(str(path))
        arr = np.asanyarray(img.dataobj)
        _rewrite(path, np.ascontiguousarray(arr[:, :, :1]))
    convert_fails(capsys, plain_dir, tmp_path, "single slice")


def test_label_not_binary_is_a_check_problem(capsys, plain_dir):
    path = first_file(plain_dir, "lesion.nii.gz")
    arr = np.asanyarray(nib.load(str(path)).dataobj).astype(np.uint8)
    arr[0, 0, 0] = 3
    _rewrite(path, arr)
    code, out, _ = run_cli(capsys, "check", str(plain_dir))
    assert code == 1 and "expected 0/1" in out


@pytest.mark.parametrize("command", ["train", "seg-comparison", "ctmr-cgan"])
def test_label_not_binary_refused_before_any_run_folder(capsys, plain_dir, tmp_path, command):
    path = first_file(plain_dir, "lesion.nii.gz")
    arr = np.asanyarray(nib.load(str(path)).dataobj).astype(np.uint8) * 2
    _rewrite(path, arr)
    out = tmp_path / "run"
    args = {"train": ["train", "--set", f"data.dataset={plain_dir}", "--out", str(out)],
            "seg-comparison": ["recipe", "seg-comparison", "--data", str(plain_dir), "--out", str(out)],
            "ctmr-cgan": ["recipe", "ctmr-cgan", "--data", str(plain_dir), "--out", str(out)]}[command]
    code, _, err = run_cli(capsys, *args)
    assert_user_error(code, err, "besides 0 and 1", "lesion")
    assert not out.exists()


def test_perfusion_refuses_nan_one_slice_and_non_binary_aif_mask(capsys, tmp_path, plain_dir):
    ctp = first_file(plain_dir, "ctp.nii.gz")
    img = nib.load(str(ctp))
    img.header.set_data_dtype(np.float32)
    arr = np.asanyarray(img.dataobj).astype(np.float32)
    bad = arr.copy()
    bad[:3, :3, 0, 5] = np.nan
    nan_path = tmp_path / "nan_ctp.nii.gz"
    nib.save(nib.Nifti1Image(bad, img.affine, img.header), str(nan_path))
    code, _, err = run_cli(capsys, "perfusion", str(nan_path), "--out", str(tmp_path / "p1"))
    assert_user_error(code, err, "9 NaN/Inf")
    one = tmp_path / "one_ctp.nii.gz"
    nib.save(nib.Nifti1Image(arr[:, :, :1], img.affine, img.header), str(one))
    code, _, err = run_cli(capsys, "perfusion", str(one), "--out", str(tmp_path / "p2"))
    assert_user_error(code, err, "slice")
    mask = np.zeros(arr.shape[:3], np.uint8)
    mask[10:14, 10:14, :] = 2
    mpath = tmp_path / "aif.nii.gz"
    nib.save(nib.Nifti1Image(mask, img.affine), str(mpath))
    code, _, err = run_cli(capsys, "perfusion", str(ctp), "--out", str(tmp_path / "p3"), "--aif-mask", str(mpath))
    assert_user_error(code, err, "AIF mask holds values [2]")
    assert not any((tmp_path / p).exists() for p in ("p1", "p2", "p3"))


def test_negative_perfusion_values_are_counted_by_check(capsys, plain_dir, tmp_path):
    path = first_file(plain_dir, "mtt.nii.gz")
    arr = np.asanyarray(nib.load(str(path)).dataobj).astype(np.float32)
    arr[0, 0, 0] = arr[1, 0, 0] = -245.0
    _rewrite(path, arr)
    code, out, _ = run_cli(capsys, "check", str(plain_dir), "--json", str(tmp_path / "c.json"))
    assert code == 0 and "2 voxel(s)" in out and "physically impossible for mtt" in out
    import json

    report = json.loads((tmp_path / "c.json").read_text())
    assert sum(c["impossible"].get("mtt", 0) for c in report["cases"]) == 2
    code, _, err = run_cli(capsys, "check", str(plain_dir), "--json", str(tmp_path / "c.json"))
    assert code == 2 and "--force" in err  # an existing report is not overwritten silently
    assert json.loads((tmp_path / "c.json").read_text()) == report


def test_empty_directory(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(capsys, "check", str(empty))
    assert_user_error(code, err, "empty folder", str(empty))
    code, _, err = run_cli(capsys, "check", str(tmp_path / "nope"))
    assert_user_error(code, err, "folder not found")


def test_unwritable_output(capsys, tmp_path, plain_dir):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "convert", str(plain_dir), str(blocker / "out"), "--to", "nnunet")
    assert_user_error(code, err, "afile")
    code, _, err = run_cli(capsys, "demo", "--out", str(blocker / "run"), "--subjects", "2", "--size", "48")
    assert_user_error(code, err, "afile")


def test_existing_output_not_overwritten(capsys, tmp_path, plain_dir):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("results")
    code, _, err = run_cli(capsys, "convert", str(plain_dir), str(dest), "--to", "plain")
    assert_user_error(code, err, "--force")
    assert (dest / "keep.txt").read_text() == "results"
    code, out, _ = run_cli(capsys, "convert", str(plain_dir), str(dest), "--to", "plain", "--force")
    assert code == 0 and not (dest / "keep.txt").exists()


def test_bad_config_and_splits(capsys, tmp_path, plain_dir):
    out = tmp_path / "s.json"
    code, _, err = run_cli(capsys, "split", str(plain_dir), "--out", str(out), "--folds", "50")
    assert_user_error(code, err, "cannot fill 50 folds")
    assert not out.exists()


def _ctp_file(path: Path, data: np.ndarray, dt: float = 1.0) -> Path:
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 5.0, 1.0]))
    img.header.set_xyzt_units("mm", "sec")
    zooms = list(img.header.get_zooms())
    if data.ndim == 4:
        zooms[3] = dt
        img.header.set_zooms(zooms)
    nib.save(img, str(path))
    return path


def test_perfusion_bad_inputs(capsys, tmp_path):
    t = np.arange(30.0)
    bolus = 200 * np.exp(-((t - 12) ** 2) / 8)
    good = np.zeros((12, 12, 2, 30), np.float32) + 30
    good[..., :] += bolus * 0.05
    good[3, 3, 0] += bolus
    cases = {
        "nan.nii.gz": (np.where(np.indices(good.shape)[0] == 0, np.nan, good).astype(np.float32), 1.0, "NaN"),
        "nodt.nii.gz": (good, 0.0, "give --frame-interval"),
        "short.nii.gz": (good[..., :8], 1.0, "frames"),
        "flat.nii.gz": (np.full(good.shape, 30, np.float32), 1.0, "bolus"),
        "ct3d.nii.gz": (good[..., 0], 1.0, "4D"),
        "slow.nii.gz": (good, 1e6, "frame interval"),
    }
    for name, (data, dt, needle) in cases.items():
        src = _ctp_file(tmp_path / name, data, dt)
        out = tmp_path / f"out_{name}"
        code, _, err = run_cli(capsys, "perfusion", str(src), "--out", str(out))
        assert_user_error(code, err, name, needle)
        assert not out.exists()
    # frame timing: a sidecar whose times do not match the frames, an unreadable sidecar
    src = _ctp_file(tmp_path / "side.nii.gz", good, 0.0)
    (tmp_path / "side.json").write_text('{"FrameTimesStart": [0, 1, 2]}')
    code, _, err = run_cli(capsys, "perfusion", str(src), "--out", str(tmp_path / "o_side"))
    assert_user_error(code, err, "side.nii.gz", "3 times, the CTP 30 frames")
    (tmp_path / "side.json").write_text("{not json")
    code, _, err = run_cli(capsys, "perfusion", str(src), "--out", str(tmp_path / "o_side"))
    assert_user_error(code, err, "side.json", "not valid JSON")
    assert not (tmp_path / "o_side").exists()
    # ... and the two ways to give it: --frame-interval, or uneven times in the sidecar
    code, out, err = run_cli(capsys, "perfusion", str(tmp_path / "nodt.nii.gz"), "--out", str(tmp_path / "o_given"),
                             "--frame-interval", "1.0", "--set", "venous_scaling=false")
    assert code == 0, err
    assert "given (--frame-interval)" in out
    times = np.concatenate([np.arange(20.0), 20 + 2.0 * np.arange(1, 11)])
    (tmp_path / "side.json").write_text(json.dumps({"FrameTimesStart": times.tolist()}))
    code, out, err = run_cli(capsys, "perfusion", str(src), "--out", str(tmp_path / "o_uneven"),
                             "--set", "venous_scaling=false")
    assert code == 0, err
    assert "resampled to 41 uniform frames" in out
    facts = json.loads((tmp_path / "o_uneven" / "perfusion.json").read_text())
    assert facts["frame_timing"]["uneven"] and facts["dt_s"] == 1.0
    src = _ctp_file(tmp_path / "ok.nii.gz", good)
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((5, 5, 2), np.uint8), np.eye(4)), str(mask))
    code, _, err = run_cli(capsys, "perfusion", str(src), "--out", str(tmp_path / "o"), "--aif-mask", str(mask))
    assert_user_error(code, err, "mask.nii.gz", "grid")
    code, _, err = run_cli(capsys, "perfusion", str(tmp_path / "missing.nii.gz"), "--out", str(tmp_path / "o"))
    assert_user_error(code, err, "missing.nii.gz")
    (tmp_path / "not_a_case").mkdir()
    code, _, err = run_cli(capsys, "perfusion", str(tmp_path / "not_a_case"), "--out", str(tmp_path / "o"))
    assert_user_error(code, err, "CT_4DPWI")


def test_phantom_bad_config(capsys, tmp_path):
    code, _, err = run_cli(capsys, "phantom", "--out", str(tmp_path / "p"), "--set", "grid.sizes=3")
    assert_user_error(code, err, "grid", "sizes")
    code, _, err = run_cli(capsys, "phantom", "--out", str(tmp_path / "p"), "--set", "bolus.frames=many")
    assert_user_error(code, err, "bolus.frames")
    code, _, err = run_cli(capsys, "phantom", "--out", str(tmp_path / "p"), "--subjects", "0")
    assert_user_error(code, err, "subject")
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "phantom", "--out", str(blocker / "p"), "--subjects", "1", "--size", "32",
                           "--set", "grid.slices=[2]", "--no-figures")
    assert_user_error(code, err, "afile")
    assert not (tmp_path / "p").exists()


def test_segmentation_cli_bad_inputs(capsys, tmp_path, plain_dir):
    code, _, err = run_cli(capsys, "predict", "--model", str(tmp_path / "nope"), "--input", str(plain_dir),
                           "--out", str(tmp_path / "p"))
    assert_user_error(code, err, "nope", "no such run")
    code, _, err = run_cli(capsys, "evaluate", str(tmp_path))
    assert_user_error(code, err, "not a run folder")
    run = tmp_path / "run"
    (run / "fold_0").mkdir(parents=True)
    (run / "config.yaml").write_text("name: x\n")
    (run / "fold_0" / "best.pt").write_bytes(b"truncated")
    code, _, err = run_cli(capsys, "predict", "--model", str(run / "fold_0" / "best.pt"), "--input", str(plain_dir),
                           "--out", str(tmp_path / "p"))
    assert_user_error(code, err, "best.pt")
    assert not (tmp_path / "p").exists()
    code, _, err = run_cli(capsys, "train", "--set", "run.epochs=3")
    assert_user_error(code, err, "data.dataset")


def test_predict_input_case_folders_of_any_layout(tmp_path, plain_dir, isles2018_dir, isles22_dir):
    from strokesynth.apps.predict import open_cases
    from strokesynth.errors import DataError

    case_dir = sorted(p for p in plain_dir.iterdir() if p.is_dir())[0]
    assert [c.id for c in open_cases(case_dir, ["cbf"])] == [case_dir.name]
    case_dir = sorted(p for p in isles2018_dir.iterdir() if p.is_dir())[0]
    assert len(open_cases(case_dir, ["cbf"])) == 1
    subject = isles22_dir / "rawdata" / "sub-strokecase0009"
    assert [c.id for c in open_cases(subject, ["dwi"])] == ["sub-strokecase0009_ses-0001"]
    with pytest.raises(DataError, match="missing modality cbf") as exc:  # the real problem: no CTP maps, not a layout guess
        open_cases(subject, ["cbf"])
    assert "unknown modality" not in str(exc.value)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="not a data set and not a case folder"):
        open_cases(stray, ["cbf"])


def test_predict_never_crops_silently(toy_cases):
    from strokesynth.apps.predict import grid_check
    from strokesynth.errors import DataError
    from strokesynth.systems.segmenter import TrainConfig

    cfg = TrainConfig()
    case = toy_cases[0]  # 32 x 32 in-plane
    cfg.data.size = (16, 16)
    with pytest.raises(DataError, match="larger than the model's training grid 16x16"):
        grid_check(case, cfg)
    cfg.data.size = (64, 64)
    assert "padded to the model's 64x64" in grid_check(case, cfg)
    cfg.data.size = (32, 32)
    assert grid_check(case, cfg) is None
    cfg.data.mode, cfg.data.size = "resample", (16, 16)
    assert grid_check(case, cfg) is None


def test_perfusion_refuses_frames_in_reverse_time_order(capsys, tmp_path):
    """The hostile round's reversed CTP flagged 99.6 % of Tmax and exited 0: it is refused in one line."""
    t = np.arange(40.0)
    bolus = np.where(t > 8, (t - 8) ** 3 * np.exp(-(t - 8) / 1.5), 0.0)
    bolus *= 200 / bolus.max()  # a gamma variate: fast rise, slow washout
    ctp = np.zeros((12, 12, 2, 40), np.float32) + 30
    ctp[...] += bolus * 0.05
    ctp[3, 3, 0] += bolus
    forward = _ctp_file(tmp_path / "forward.nii.gz", ctp, 1.0)
    code, _, err = run_cli(capsys, "perfusion", str(forward), "--out", str(tmp_path / "f"))
    assert "reverse time order" not in err
    backward = _ctp_file(tmp_path / "backward.nii.gz", np.ascontiguousarray(ctp[..., ::-1]), 1.0)
    code, _, err = run_cli(capsys, "perfusion", str(backward), "--out", str(tmp_path / "b"))
    assert_user_error(code, err, "backward.nii.gz", "reverse time order")
    assert not (tmp_path / "b").exists()
