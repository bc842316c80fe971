"""Shared fixtures: tiny toy cohorts written in each layout, and the real data in ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from strokesynth.data.toy import ToyConfig, toy_cohort
from strokesynth.io import write_cohort

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def toy_cases():
    """Five subjects, some with two slabs, 32x32 in-plane."""
    return toy_cohort(ToyConfig(subjects=5, size=32, frames=8, seed=3))


@pytest.fixture
def isles2018_dir(tmp_path, toy_cases):
    return write_cohort(toy_cases, tmp_path / "isles2018", layout="isles2018")


@pytest.fixture
def plain_dir(tmp_path, toy_cases):
    return write_cohort(toy_cases, tmp_path / "plain", layout="plain")


@pytest.fixture
def isles22_dir():
    path = SHARED / "isles22"
    if not path.is_dir():
        pytest.skip(f"real ISLES'22 case not available ({path} absent: fresh clone without ../shared)")
    return path


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """Run the console entry point with ``args``: (exit code, stdout, stderr)."""
    from strokesynth.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def tiny_phantom_config(**kw):
    """A small phantom: 96x96 at 2.4 mm (the default field of view), short slabs."""
    from strokesynth.phantom import PhantomConfig

    cfg = PhantomConfig(**{"subjects": 2, "healthy": 1, "seed": 5, **kw})
    cfg.grid.size = 96
    cfg.grid.spacing_mm = 2.4
    cfg.grid.slices = [4, 6]
    cfg.grid.sub_slices = 3
    cfg.grid.two_slab_prob = 0.5
    cfg.stroke.core_radius_mm = (15.0, 30.0)
    cfg.stroke.no_core_prob = 0.0
    return cfg


@pytest.fixture(scope="session")
def tiny_phantom():
    """Scans of two stroke subjects and one healthy subject (see :func:`tiny_phantom_config`)."""
    from strokesynth.phantom import generate_cohort

    return generate_cohort(tiny_phantom_config())


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_phantom):
    """A plain-layout copy of the tiny phantom (maps given), its raw-only twin (CT + CTP) and a
    one-epoch U-Net trained on the maps: ``(root, full, raw)``, the run in ``root / "run"``."""
    import shutil

    from strokesynth.recipes.cv import run_training
    from strokesynth.systems.segmenter import TrainConfig

    root = tmp_path_factory.mktemp("rawctp")
    full = write_cohort([s.case for s in tiny_phantom], root / "full", layout="plain")
    raw = root / "raw"
    for case in sorted(p for p in full.iterdir() if p.is_dir()):
        (raw / case.name).mkdir(parents=True)
        for key in ("ct", "ctp", "lesion"):
            shutil.copy(case / f"{key}.nii.gz", raw / case.name / f"{key}.nii.gz")
    for extra in full.iterdir():
        if extra.is_file():
            shutil.copy(extra, raw / extra.name)
    cfg = TrainConfig(name="unet2d")
    cfg.data.dataset, cfg.data.size = str(full), (96, 96)
    cfg.model.name, cfg.model.channels = "unet2d", [8, 16]
    cfg.run.folds, cfg.run.folds_to_run, cfg.run.epochs, cfg.run.steps_per_epoch = 2, [0], 1, 3
    cfg.run.selection = "last"  # three subjects: too few for an inner split, and nothing is scored here
    run_training(cfg, root / "run", echo=lambda s: None)
    return root, full, raw


def resume_under_random_kills(cmd: list[str], env: dict[str, str], seconds: float, rng, run: Path,
                              low: float = 0.2, high: float = 0.6, tries: int = 20) -> int:
    """Run the resume command ``cmd`` (which resumes ``run``) and kill -9 it at a random moment until
    one finishes; returns the kills, at least one.

    Each try waits ``uniform(low, high) * seconds`` (``seconds``: the uninterrupted run's time),
    growing 1.3x per try once a kill has landed: a resume that only has the final evaluation left
    costs a start-up plus that evaluation, which can exceed any fixed fraction of the straight run
    on a loaded machine (seen once: 20 kills in a row and "never finished"). The other way round, when
    the load drops after the straight run was timed, the first resume can finish before its kill (seen
    once beside a CPU-heavy job: no random kill at all); then ``run`` is put back as it was before the
    try and the wait halved, so every call kills at least once.
    """
    import shutil
    import signal
    import subprocess

    snapshot = run.with_name(run.name + ".before_random_kills")
    shutil.copytree(run, snapshot)
    kills, scale = 0, seconds
    for attempt in range(tries):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=float(rng.uniform(low, high)) * scale * (1.3 ** attempt if kills else 1.0))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 0, proc.stderr.read()[-2000:]
        if kills:
            shutil.rmtree(snapshot)
            return kills
        shutil.rmtree(run)  # finished before the first kill: start again from the same state, sooner
        shutil.copytree(snapshot, run)
        scale /= 2
    pytest.fail("the resumed run never finished" if kills else "no random kill landed")


@pytest.fixture
def full_mask_lesion_gan(monkeypatch):
    """The lesion GAN starts from full masks, so that injection into healthy label maps fits after
    one epoch (its learning is measured by the tiny recipe, not by the tests that use this)."""
    from strokesynth.systems import lesion_gan

    init = lesion_gan.LesionWGAN.__init__

    def full_masks(self, cfg):
        init(self, cfg)
        self.generator.empty_bias = 5.0
        self.generator.reset_output()
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(self.generator.state_dict())

    monkeypatch.setattr(lesion_gan.LesionWGAN, "__init__", full_masks)
