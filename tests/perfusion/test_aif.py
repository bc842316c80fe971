"""The AIF chosen on sub-frame arrival (issue: an AIF from a branch filling late biases every Tmax)."""

from __future__ import annotations

import numpy as np
import pytest

from strokesynth.perfusion.aif import arrival_times, gamma_variate, peak_time, select_aif
from strokesynth.perfusion.maps import PerfusionConfig, analyze_ctp
from strokesynth.phantom.validation import maps_vs_truth


def test_arrival_times_resolve_a_fraction_of_a_frame():
    dt = 1.25
    t = np.arange(48) * dt
    delays = np.linspace(0.0, 1.2, 13)
    curves = np.stack([gamma_variate(t, 8.0 + d, 3.0, 1.5, 300.0) for d in delays])
    est = arrival_times(curves, dt)
    # measured: one offset (the half-height ~2.1 s after the bolus onset) within 0.053 s peak to peak
    assert np.ptp(est - delays) < 0.12
    assert np.all(np.diff(est) > 0)  # 0.1 s steps at 1.25 s frames are told apart
    # the frame of the peak cannot: it moves by whole frames only
    assert len(np.unique(curves.argmax(axis=1))) <= 2
    assert abs(peak_time(gamma_variate(t, 8.3, 3.0, 1.5, 300.0), dt) - (8.3 + 4.5)) < 0.2


def test_select_aif_takes_the_earliest_arteries_which_the_peak_frame_rule_misses():
    rng = np.random.default_rng(0)
    dt = 1.25
    t = np.arange(40) * dt
    enh = rng.normal(0, 2.0, (12, 12, 2, 40)).astype(np.float32)
    carotid = [(1, 1, 0), (1, 2, 0), (2, 1, 0), (2, 2, 0), (1, 1, 1), (2, 2, 1)]
    branch = [(8, 8, 0), (8, 9, 0), (9, 8, 0), (9, 9, 0), (8, 8, 1), (9, 9, 1)]
    for v in carotid:  # arrives first, a little lower (partial volume)
        enh[v] += gamma_variate(t, 8.0, 3.0, 1.5, 280.0)
    for v in branch:  # 0.6 s later (half a frame), higher and as narrow
        enh[v] += gamma_variate(t, 8.6, 3.0, 1.5, 300.0)
    enh += gamma_variate(t, 9.5, 3.0, 2.0, 12.0)  # tissue everywhere
    mask = np.ones((12, 12, 2), bool)
    new = select_aif(enh, mask, dt, n_voxels=4)
    assert {tuple(v) for v in new.voxels} <= set(carotid)
    assert new.arrival_time is not None and new.arrival_time < arrival_times(enh[branch[0]][None], dt)[0]
    old = select_aif(enh, mask, dt, n_voxels=4, rank="peak_frame")
    assert {tuple(v) for v in old.voxels} & set(branch)  # mixes in the late branch
    facts = new.describe()
    assert facts["n_voxels"] == 4 and len(facts["location_voxel"]) == 3 and facts["arrival_s"] > 0


def test_on_phantom_scans_the_aif_is_within_a_quarter_second_of_the_earliest_artery(tiny_phantom):
    late = {"arrival": [], "peak_frame": []}
    for scan in tiny_phantom:
        truth = {k: v.array for k, v in scan.truth.items()}
        for rank in late:
            res = analyze_ctp(scan.case["ctp"], PerfusionConfig(aif_rank=rank))
            maps = {k: res.maps[k].array for k in ("cbf", "cbv", "tmax")}
            late[rank].append(maps_vs_truth(maps, truth, aif_voxels=res.aif.voxels)["aif_late_s"])
            assert res.info["aif"]["arrival_s"] == pytest.approx(res.aif.arrival_time, abs=1e-3)
    # measured on these 3 scans: 0.13, 0.35, 0.04 s (arrival) and 0.21, 0.43, 0.36 s (peak frame)
    assert np.median(late["arrival"]) <= 0.26, late
    assert sum(late["arrival"]) <= sum(late["peak_frame"]), late  # measured 0.52 against 1.00 s
