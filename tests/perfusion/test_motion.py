"""Head motion: the phantom's moving CTP and rigid frame registration in the perfusion module."""

from __future__ import annotations

import numpy as np
import pytest

from strokesynth.perfusion.motion import register_frames
from strokesynth.phantom import PhantomConfig
from strokesynth.phantom.cohort import subject_scans


def _config(prob: float) -> PhantomConfig:
    cfg = PhantomConfig(subjects=1, seed=4)
    cfg.grid.spacing_mm *= cfg.grid.size / 96
    cfg.grid.size = 96
    cfg.grid.slices = [6]
    cfg.grid.two_slab_prob = 0.0
    cfg.motion.prob = prob
    cfg.motion.kinds = ("sudden",)
    cfg.motion.translate_mm = (3.0, 4.0)
    cfg.motion.rotate_deg = (3.0, 4.0)
    cfg.motion.tilt_share = 0.0
    cfg.motion.through_plane_share = 0.0
    cfg.perfusion_method = "osvd"
    return cfg


@pytest.fixture(scope="module")
def pair():
    still = subject_scans(_config(0.0), 0, False, 1)[0]
    moving = subject_scans(_config(1.0), 0, False, 1)[0]
    return still, moving


def test_the_phantom_records_its_motion(pair):
    still, moving = pair
    assert still.info["motion"] is None
    m = moving.info["motion"]
    assert m["kind"] == "sudden" and 3.0 <= m["max_rotation_deg"] <= 4.0 and m["max_translation_mm"] >= 3.0
    rot = np.array(m["rotation_deg"])
    assert not rot[0].any() and rot[-1, 2] != 0  # at rest on the first frame, moved on the last
    # the moved frames differ from the still scan's far beyond the noise; the first frame does not
    a, b = still.case["ctp"].array.astype(np.float32), moving.case["ctp"].array.astype(np.float32)
    brain = still.truth["anatomy"].array >= 2
    assert np.abs(a[..., -1] - b[..., -1])[brain].mean() > 2 * np.abs(a[..., 0] - b[..., 0])[brain].mean()


def test_registration_recovers_the_motion_and_the_still_frames(pair):
    still, moving = pair
    spacing = tuple(moving.case["ctp"].spacing[:3])
    out, report = register_frames(moving.case["ctp"].array.astype(np.float32), spacing)
    truth_rot = np.array(moving.info["motion"]["rotation_deg"])
    truth_shift = np.array(moving.info["motion"]["translation_mm"])
    est_rot = np.array([f.rotation_deg for f in report.frames])
    est_shift = np.array([f.translation_mm for f in report.frames])
    ok = np.array([f.registered for f in report.frames])
    moved = np.abs(truth_rot).max(axis=1) > 0
    # measured at 96 px: within 0.18 mm and 0.36 degrees on every moved frame
    assert ok[moved].all()
    assert np.abs(est_shift - truth_shift)[moved].max() < 0.5
    assert np.abs(est_rot - truth_rot)[moved].max() < 0.75
    # inside the brain the corrected frames equal the still scan's up to the noise (and the
    # 1 mm smoothing applied to every frame alike)
    ref, _ = register_frames(still.case["ctp"].array.astype(np.float32), spacing)
    brain = still.truth["anatomy"].array >= 2
    t = int(np.flatnonzero(moved)[-1])
    after = np.abs(out[..., t] - ref[..., t])[brain].mean()
    before = np.abs(moving.case["ctp"].array[..., t].astype(np.float32) - ref[..., t])[brain].mean()
    assert after < 0.4 * before, (after, before)  # measured 9.6 vs 44.5 HU


def test_a_frame_that_cannot_be_registered_is_flagged_and_kept(pair):
    still, _ = pair
    data = still.case["ctp"].array.astype(np.float32).copy()
    rng = np.random.default_rng(0)
    data[..., 20] = rng.normal(0, 500, data.shape[:3])  # no head in this frame
    out, report = register_frames(data, tuple(still.case["ctp"].spacing[:3]), presmooth_mm=0)
    assert 20 in report.failed
    assert np.array_equal(out[..., 20], data[..., 20])
    assert report.as_dict()["frames_not_registered"] == report.failed
