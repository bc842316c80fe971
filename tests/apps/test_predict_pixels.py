"""predict brings a case to the model's recorded training pixel size, and the result back."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
from scipy import ndimage

from conftest import run_cli


def _upsample(src, dest):
    """A copy of a plain-layout data set at twice the in-plane resolution (same field of view)."""
    shutil.copytree(src, dest)
    for path in sorted(dest.rglob("*.nii.gz")):
        img = nib.load(path)
        arr = np.asanyarray(img.dataobj)
        label = path.name == "lesion.nii.gz"
        factors = (2, 2) + (1,) * (arr.ndim - 2)
        out = ndimage.zoom(arr.astype(np.float32), factors, order=0 if label else 1, grid_mode=True, mode="nearest")
        aff = img.affine.copy()
        aff[:3, :2] /= 2
        nib.save(nib.Nifti1Image(out.astype(np.uint8 if label else np.float32), aff), path)
    return dest


def test_training_records_pixels_and_predict_resamples(capsys, tmp_path, plain_dir, toy_cases):
    from strokesynth.config import load_config
    from strokesynth.recipes.cv import run_training
    from strokesynth.systems.segmenter import TrainConfig

    cfg = TrainConfig(name="unet2d")
    cfg.data.dataset, cfg.data.size = str(plain_dir), (32, 32)
    cfg.model.name, cfg.model.channels = "unet2d", [8, 16]
    cfg.run.folds, cfg.run.folds_to_run, cfg.run.epochs, cfg.run.steps_per_epoch = 2, [0], 2, 4
    run = tmp_path / "run"
    run_training(cfg, run, echo=lambda s: None)
    saved = load_config(TrainConfig, run / "config.yaml")
    assert saved.data.pixel_mm == 0  # the config stays as resolved; the measured size is recorded beside it
    measured = json.loads((run / "measured.json").read_text())
    assert np.isclose(measured["pixel_mm"], np.mean(toy_cases[0].spacing[:2]), rtol=1e-3)

    code, text, err = run_cli(capsys, "predict", "--model", str(run), "--input", str(plain_dir), "--out",
                              str(tmp_path / "p1"))
    assert code == 0, err
    assert "resampled" not in text + err
    fine = _upsample(plain_dir, tmp_path / "fine")
    code, text, err = run_cli(capsys, "predict", "--model", str(run), "--input", str(fine), "--out",
                              str(tmp_path / "p2"))
    assert code == 0, err
    assert "resampled to the model's training" in text + err
    for case in toy_cases:
        a = np.asanyarray(nib.load(tmp_path / "p1" / case.id / "prob.nii.gz").dataobj)
        b = nib.load(tmp_path / "p2" / case.id / "prob.nii.gz")
        assert b.shape == (2 * a.shape[0], 2 * a.shape[1], a.shape[2])  # on the fine case's own grid
        back = ndimage.zoom(np.asanyarray(b.dataobj), (0.5, 0.5, 1), order=1, grid_mode=True, mode="nearest")
        # the model saw nearly the same pixels both times: the probabilities agree
        assert np.abs(back - a).mean() < 0.05
