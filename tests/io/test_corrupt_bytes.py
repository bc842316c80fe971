"""Corrupt bytes are never used silently (the second hostile round): gzip CRC, headers whose
voxels would be misread, labels beyond the integer range, complex or RGB images, flipped
checkpoint bytes. Each through the CLI: ``check`` reports the file, the other commands stop with
one line naming it."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import run_cli

TINY = ["--set", "data.size=[32,32]", "--set", "run.epochs=1", "--set", "run.steps_per_epoch=1",
        "--set", "run.folds=2", "--set", "run.folds_to_run=[0]", "--set", "model.name=unet2d",
        "--set", "model.channels=[4,8]"]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    from strokesynth.data.toy import ToyConfig, toy_cohort
    from strokesynth.io import write_cohort

    return write_cohort(toy_cohort(ToyConfig(subjects=4, size=32, frames=8, seed=3)),
                        tmp_path_factory.mktemp("corrupt") / "good", layout="plain")


def _copy(good: Path, tmp: Path) -> tuple[Path, Path]:
    data = Path(shutil.copytree(good, tmp / "data"))
    return data, sorted(p for p in data.iterdir() if p.is_dir())[0]


def _flip_deflate_bytes(path: Path) -> None:
    """Flip two bits of the deflate stream so that the voxels change but nibabel still reads the
    file (the gzip CRC is the only thing that notices)."""
    good = path.read_bytes()
    for k in range(40, len(good) - 16):
        bad = bytearray(good)
        bad[k] ^= 0x04
        bad[k + 3] ^= 0x01
        try:
            gzip.decompress(bytes(bad))
            continue  # a flip that changed nothing the CRC sees (rare): try the next byte
        except (OSError, EOFError, ValueError, zlib.error):
            pass
        path.write_bytes(bytes(bad))
        try:
            np.asanyarray(nib.load(str(path)).dataobj)
        except Exception:  # noqa: BLE001 - this flip broke the stream for nibabel too; want a silent one
            continue
        return
    raise AssertionError("no silent flip found")


def _one_error_line(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.strip().splitlines() if line]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err[-1500:]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_gzip_crc_is_checked_by_check_and_train(tmp_path, capsys, good):
    data, case = _copy(good, tmp_path)
    _flip_deflate_bytes(case / "cbf.nii.gz")
    code, out, err = run_cli(capsys, "check", str(data))
    assert code == 1 and "PROBLEMS" in out and "cbf.nii.gz" in out and "CRC" in out, out + err
    code, _, err = run_cli(capsys, "train", "--set", f"data.dataset={data}", *TINY, "--out", str(tmp_path / "run"))
    _one_error_line(code, err, "cbf.nii.gz", "corrupt")
    assert not (tmp_path / "run").exists()


def _raw_nifti(path: Path, array: np.ndarray, *, vox_offset: float | None = None, **fields) -> None:
    img = nib.Nifti1Image(array, np.eye(4), dtype=array.dtype)
    for key, value in fields.items():
        img.header[key] = value
    nib.save(img, str(path))
    if vox_offset is not None:  # patch the on-disk field (nibabel recomputes it on save)
        raw = bytearray(path.read_bytes())
        raw[108:112] = np.float32(vox_offset).tobytes()
        path.write_bytes(bytes(raw))


def test_vox_offset_inside_the_header_is_refused(tmp_path, capsys, good):
    data, case = _copy(good, tmp_path)
    arr = np.asanyarray(nib.load(str(case / "cbf.nii.gz")).dataobj).astype(np.float32)
    (case / "cbf.nii.gz").unlink()
    _raw_nifti(case / "cbf.nii", arr, vox_offset=0)
    code, out, err = run_cli(capsys, "check", str(data))
    assert code == 1 and "vox_offset 0" in out, out + err
    code, _, err = run_cli(capsys, "convert", str(data), str(tmp_path / "out"), "--to", "plain")
    _one_error_line(code, err, "cbf.nii", "vox_offset")


def test_label_beyond_int32_does_not_wrap(tmp_path, capsys, good):
    data, case = _copy(good, tmp_path)
    lesion = np.asanyarray(nib.load(str(case / "lesion.nii.gz")).dataobj).astype(np.uint64)
    lesion[0, 0, 0] = 2**32 + 1  # would wrap to 1 as int32
    nib.save(nib.Nifti1Image(lesion, nib.load(str(case / "lesion.nii.gz")).affine, dtype=np.uint64),
             str(case / "lesion.nii.gz"))
    code, _, err = run_cli(capsys, "convert", str(data), str(tmp_path / "out"), "--to", "plain")
    _one_error_line(code, err, "lesion.nii.gz", str(2**32 + 1))


@pytest.mark.parametrize("kind", ["complex", "rgb"])
def test_complex_and_rgb_images_are_refused_without_a_warning(tmp_path, capsys, good, kind):
    data, case = _copy(good, tmp_path)
    ref = nib.load(str(case / "ct.nii.gz"))
    arr = np.asanyarray(ref.dataobj).astype(np.float32)
    if kind == "complex":
        img = nib.Nifti1Image(arr.astype(np.complex64) + 1j, ref.affine, dtype=np.complex64)
    else:
        rgb = np.zeros(arr.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
        img = nib.Nifti1Image(rgb, ref.affine, dtype=nib.nifti1.data_type_codes.dtype["RGB"])
    nib.save(img, str(case / "ct.nii.gz"))
    code, out, err = run_cli(capsys, "check", str(data))
    assert code == 1 and "ct.nii.gz" in out and "not supported" in out and "Traceback" not in err, out + err
    code, _, err = run_cli(capsys, "train", "--set", f"data.dataset={data}", *TINY, "--out", str(tmp_path / "run"))
    _one_error_line(code, err, "ct.nii.gz", "not supported")


def test_invalid_scaling_is_reported_by_check(tmp_path, capsys, good):
    data, case = _copy(good, tmp_path)
    arr = np.asanyarray(nib.load(str(case / "cbf.nii.gz")).dataobj).astype(np.float32)
    img = nib.Nifti1Image(arr, np.eye(4))
    img.header["scl_slope"], img.header["scl_inter"] = 1.0, np.inf
    nib.Nifti1Image.to_filename(img, str(case / "cbf.nii.gz"))
    raw = gzip.decompress((case / "cbf.nii.gz").read_bytes())
    assert np.frombuffer(raw[116:120], np.float32)[0] == np.inf  # written as asked
    code, out, err = run_cli(capsys, "check", str(data))
    assert code == 1 and "cbf.nii.gz" in out and "scaling" in out and "Traceback" not in err, out + err


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_convert_keeps_64_bit_integer_images(tmp_path, capsys, good, dtype):
    data, case = _copy(good, tmp_path)
    ref = nib.load(str(case / "ct.nii.gz"))
    arr = np.asanyarray(ref.dataobj).astype(np.int64) + 1024
    nib.save(nib.Nifti1Image(arr.astype(dtype), ref.affine, dtype=dtype), str(case / "ct.nii.gz"))
    code, _, err = run_cli(capsys, "convert", str(data), str(tmp_path / "out"), "--to", "plain")
    assert code == 0, err
    back = np.asanyarray(nib.load(str(tmp_path / "out" / case.name / "ct.nii.gz")).dataobj)
    assert np.array_equal(back.astype(np.int64), arr)


def _largest_tensor(node):
    import torch

    if isinstance(node, torch.Tensor):
        return node
    items = node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else []
    found = [t for t in (_largest_tensor(v) for v in items) if t is not None]
    return max(found, key=lambda t: t.numel(), default=None)


def test_flipped_checkpoint_bytes_are_refused(tmp_path, capsys, good):
    import torch

    code, _, err = run_cli(capsys, "train", "--set", f"data.dataset={good}", *TINY, "--out", str(tmp_path / "run"))
    assert code == 0, err
    best = tmp_path / "run" / "fold_0" / "best.pt"
    raw = bytearray(best.read_bytes())
    start = raw.find(_largest_tensor(torch.load(best, weights_only=True)).numpy().tobytes())
    assert start > 0  # flip 64 bytes inside a weight tensor's data: the file still loads, other weights
    raw[start + 8:start + 72] = bytes(b ^ 0x5A for b in raw[start + 8:start + 72])
    best.write_bytes(bytes(raw))
    torch.load(best, weights_only=True)  # torch alone does not notice
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    code, _, err = run_cli(capsys, "predict", "--model", str(tmp_path / "run"), "--input", str(good), "--out",
                           str(tmp_path / "pred"))
    _one_error_line(code, err, "best.pt")
    assert not (tmp_path / "pred").exists()
    code, _, err = run_cli(capsys, "evaluate", str(tmp_path / "run"))
    _one_error_line(code, err, "best.pt")
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert after == before  # evaluate overwrote nothing of the run


def test_checkpoint_checksum_covers_every_tensor_and_value():
    import torch

    from strokesynth.engine.checkpoint import payload_digest

    base = {"networks": {"g": {"w": torch.ones(3, 2), "b": torch.zeros(2, dtype=torch.bfloat16)}}, "epoch": 3,
            "config": {"lr": 0.1}}
    ref = payload_digest(base)
    assert payload_digest({**base, "sha256": "x"}) == ref
    changed = [{**base, "epoch": 4}, {**base, "config": {"lr": 0.2}},
               {**base, "networks": {"g": {"w": torch.ones(2, 3), "b": base["networks"]["g"]["b"]}}},
               {**base, "networks": {"g": {"w": torch.ones(3, 2), "b": torch.ones(2, dtype=torch.bfloat16)}}}]
    assert all(payload_digest(c) != ref for c in changed)
