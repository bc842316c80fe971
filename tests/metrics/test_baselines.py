"""The two fixed-rule baselines every segmentation table carries."""

from __future__ import annotations

import numpy as np

from strokesynth.metrics.baselines import BASELINE, TMAX_BASELINE, baseline_masks, tmax_region


def _maps() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    cbf = rng.uniform(40, 60, (8, 8, 2)).astype(np.float32)
    tmax = rng.uniform(0, 2, (8, 8, 2)).astype(np.float32)
    cbf[:2, :2] = 5.0  # core: CBF far below 30 % of the median
    tmax[:4, :4] = 9.0  # hypoperfused: the core and around it
    cbf[7], tmax[7] = 0.0, 0.0  # outside the brain: every map 0
    return {"cbf": cbf, "cbv": np.ones_like(cbf) * (cbf > 0), "tmax": tmax}


def test_tmax_region_is_tmax_above_six_seconds_inside_the_brain():
    maps = _maps()
    brain = maps["cbf"] > 0
    region = tmax_region(maps["tmax"], brain)
    assert region.sum() == 4 * 4 * 2 and region[:4, :4].all()
    assert not tmax_region(np.full((2, 2), 6.0), np.ones((2, 2), bool)).any()  # strictly above 6 s


def test_baseline_masks_give_what_the_maps_allow():
    maps = _maps()
    both = dict(baseline_masks(maps))
    assert list(both) == [BASELINE, TMAX_BASELINE]
    assert both[BASELINE].sum() == 2 * 2 * 2 and both[BASELINE][:2, :2].all()
    assert both[TMAX_BASELINE].sum() == 4 * 4 * 2
    assert not (both[BASELINE] & ~both[TMAX_BASELINE]).any()  # on these maps the core lies inside Tmax > 6 s
    assert [n for n, _ in baseline_masks({"cbf": maps["cbf"]})] == [BASELINE]
    assert [n for n, _ in baseline_masks({"tmax": maps["tmax"], "mtt": maps["cbv"]})] == [TMAX_BASELINE]
    assert baseline_masks({}) == []
