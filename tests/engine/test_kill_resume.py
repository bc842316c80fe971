"""Fault injection: kill -9 a training run at random points (and inside checkpoint saves), resume it
until it finishes, and require exactly the uninterrupted run's history, metrics and predictions;
the same for the number of data-loader workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from strokesynth.config import save_config
from strokesynth.systems.segmenter import TrainConfig

from conftest import resume_under_random_kills

EPOCHS = 4


def _config(data: Path, path: Path, workers: int = 0) -> Path:
    cfg = TrainConfig(name="unet2d")
    cfg.data.dataset, cfg.data.size = str(data), (32, 32)
    cfg.model.name, cfg.model.channels = "unet2d", [8, 16]
    cfg.run.folds, cfg.run.folds_to_run, cfg.run.epochs = 2, [0], EPOCHS
    cfg.run.steps_per_epoch, cfg.run.batch_size, cfg.run.threads, cfg.run.num_workers = 6, 4, 1, workers
    save_config(cfg, path)
    return path


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "strokesynth.cli", *args]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _strip(obj):
    """Everything but wall-clock times."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in ("seconds",)}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _result(run: Path) -> dict:
    masks = {p.parent.name: np.asarray(nib.load(str(p)).dataobj).tolist()
             for p in sorted((run / "predictions").glob("*/mask.nii.gz"))}
    return {"history": _strip(json.loads((run / "fold_0" / "metrics.json").read_text())),
            "summary": _strip(json.loads((run / "metrics" / "summary.json").read_text())), "masks": masks}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    from strokesynth.data.toy import ToyConfig, toy_cohort
    from strokesynth.io import write_cohort

    root = tmp_path_factory.mktemp("kill")
    data = write_cohort(toy_cohort(ToyConfig(subjects=5, size=32, frames=8, seed=3)), root / "data", layout="plain")
    cfg = _config(data, root / "c.yaml")
    t0 = time.time()
    proc = subprocess.run(_cmd("train", "--config", str(cfg), "--out", str(root / "straight")), env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root, data, cfg, time.time() - t0


def test_killed_anywhere_then_resumed_equals_uninterrupted(straight):
    root, _, cfg, seconds = straight
    run = root / "killed"
    rng = np.random.default_rng(7)
    kills = 0
    # first: killed inside checkpoint saves (the 2nd and then the 3rd save of the resumed process)
    for n in (2, 3):
        args = ("train", "--config", str(cfg), "--out", str(run)) if not run.exists() else \
            ("train", "--resume", "--out", str(run))
        proc = subprocess.run(_cmd(*args), env={**ENV, "STROKESYNTH_KILL_AT_SAVE": str(n)}, capture_output=True,
                              timeout=600)
        assert proc.returncode == -signal.SIGKILL
        kills += 1
    # then: kill -9 at random moments until a resumed process finishes
    kills += resume_under_random_kills(_cmd("train", "--resume", "--out", str(run)), ENV, seconds, rng, run)
    assert kills >= 3
    assert _result(run) == _result(root / "straight")
    assert not list(run.rglob(".*.partial*"))  # the temporaries of the killed saves were cleaned up


def test_data_loader_workers_do_not_change_the_result(straight):
    root, data, _, _ = straight
    cfg = _config(data, root / "c2.yaml", workers=2)
    proc = subprocess.run(_cmd("train", "--config", str(cfg), "--out", str(root / "workers")), env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = _result(root / "straight"), _result(root / "workers")
    assert a["history"] == b["history"] and a["masks"] == b["masks"]
