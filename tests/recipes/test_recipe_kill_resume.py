"""Fault injection for the recipes: kill -9 ``recipe ctmr-cgan`` and ``recipe pseudo-dwi`` inside
checkpoint saves and at random moments, resume until they finish, and require exactly the
uninterrupted run's histories, tables and generated images (tests/engine/test_kill_resume.py does
the same for ``train``)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import resume_under_random_kills, tiny_phantom_config

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

RECIPES = {
    "ctmr-cgan": ["folds=2", "synthesis.data.size=[32,32]", "segmentation.data.size=[32,32]",
                  "synthesis.run.epochs=2", "synthesis.run.steps_per_epoch=3", "segmentation.run.epochs=2",
                  "segmentation.run.steps_per_epoch=3", "synthesis.generator.ngf=4", "synthesis.generator.n_blocks=1",
                  "synthesis.discriminator.ndf=4", "synthesis.discriminator.n_layers=1", "synthesis.sample_every=0",
                  "segmentation.model.width=4", "synthesis.run.threads=1", "segmentation.run.threads=1"],
    "pseudo-dwi": ["folds=2", "system.data.size=[48,48]", "system.extractor_channels=[4,8]",
                   "system.generator_channels=[4,8]", "system.segmenter.channels=[4,8]", "system.run.epochs=2",
                   "system.run.steps_per_epoch=2", "system.run.threads=1"],
}
TABLES = {"pseudo-dwi": ["--tables", "3"]}


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "strokesynth.cli", *args]


def _strip(obj):
    """Everything but wall-clock times and paths of the run folder itself."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in ("seconds", "wall_s", "elapsed_s")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _result(run: Path) -> dict:
    """Histories, tables and every generated or predicted image of a finished recipe run."""
    out: dict = {}
    for name in ("metrics.json", "table.json", "tables.json", "summary.json"):
        for p in sorted(run.rglob(name)):
            out[str(p.relative_to(run))] = _strip(json.loads(p.read_text()))
    for p in sorted(run.rglob("metrics/*.csv")):
        out[str(p.relative_to(run))] = re.sub(r"'seconds': [0-9.e+-]+", "", p.read_text())
    for p in sorted(run.rglob("*.nii.gz")):
        out[str(p.relative_to(run))] = np.asarray(nib.load(str(p)).dataobj).tolist()
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from strokesynth.data.toy import ToyConfig, toy_cohort
    from strokesynth.io import write_cohort
    from strokesynth.phantom import generate_cohort, write_phantom

    root = tmp_path_factory.mktemp("recipe_kill")
    toy = write_cohort(toy_cohort(ToyConfig(subjects=5, size=32, frames=8, seed=3)), root / "toy", layout="plain")

    cfg = tiny_phantom_config(subjects=3, healthy=1, seed=11)  # pseudo-DWI needs a bolus the toy lacks
    cfg.grid.size, cfg.grid.spacing_mm = 48, 4.8
    return {"ctmr-cgan": toy, "pseudo-dwi": write_phantom(generate_cohort(cfg), root / "phantom", cfg, figures=False)}


@pytest.mark.parametrize("recipe, random_kills", [("ctmr-cgan", True), ("pseudo-dwi", False)])
def test_recipe_killed_then_resumed_equals_uninterrupted(data, tmp_path, recipe, random_kills):
    """Killed inside saves (both recipes), then at random moments (ctmr-cgan; the suite's time allows
    one such loop per recipe family, and both recipes run on the same fold loop)."""
    start = _cmd("recipe", recipe, "--data", str(data[recipe]), *TABLES.get(recipe, []),
                 *[a for s in RECIPES[recipe] for a in ("--set", s)])
    t0 = time.time()
    proc = subprocess.run([*start, "--out", str(tmp_path / "straight")], env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seconds = time.time() - t0
    run = tmp_path / "killed"
    kills = 0
    for n in (2, 5):  # inside the 2nd save of the first process, the 5th of the first resumed one
        args = [*start, "--out", str(run)] if not run.exists() else _cmd("recipe", recipe, "--resume", "--out", str(run))
        proc = subprocess.run(args, env={**ENV, "STROKESYNTH_KILL_AT_SAVE": str(n)}, capture_output=True, timeout=600)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        kills += 1
    rng = np.random.default_rng(11)
    resume = _cmd("recipe", recipe, "--resume", "--out", str(run))
    if random_kills:  # then at random moments until a resumed process finishes
        kills += resume_under_random_kills(resume, ENV, seconds, rng, run, low=0.3)
    else:
        proc = subprocess.run(resume, env=ENV, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert kills >= (3 if random_kills else 2)
    a, b = _result(run), _result(tmp_path / "straight")
    assert sorted(a) == sorted(b)
    for key in b:
        assert a[key] == b[key], key
    assert not list(run.rglob(".*.partial*"))
