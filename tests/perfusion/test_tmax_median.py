"""The in-plane median of the Tmax map (``PerfusionConfig.tmax_median_mm``)."""

from __future__ import annotations

import numpy as np

from strokesynth.perfusion.maps import median_footprint, median_in_plane


def test_footprint_spans_the_window_in_mm_with_at_most_five_points_a_side():
    for spacing, side, points in ((0.45, 21, 5), (0.9, 9, 5), (1.8, 5, 5), (3.6, 3, 3)):
        fp = median_footprint(9.0, (spacing, spacing))
        assert fp.shape == (side, side, 1) and int(fp.sum()) == points**2, (spacing, fp.shape, fp.sum())


def test_inside_the_mask_it_is_the_plain_median_of_the_footprint():
    """Reference: numpy's median of the footprint's values, voxel by voxel, where the footprint lies
    wholly inside the mask (the nearest-valid fill only matters at the mask's edge)."""
    rng = np.random.default_rng(0)
    mask = np.zeros((30, 28, 3), bool)
    mask[3:27, 4:25] = True
    values = rng.normal(2.0, 0.6, int(mask.sum())).astype(np.float32)
    fp = median_footprint(9.0, (1.8, 1.8))
    out = median_in_plane(values, mask, fp)
    grid = np.zeros(mask.shape, np.float32)
    grid[mask] = values
    res = np.zeros(mask.shape, np.float32)
    res[mask] = out
    checked = 0
    for x in range(5, 25):
        for y in range(6, 23):
            for z in range(3):
                want = np.median(grid[x - 2:x + 3, y - 2:y + 3, z])
                assert abs(res[x, y, z] - want) < 1e-6
                checked += 1
    assert checked == 20 * 17 * 3


def test_edges_do_not_take_the_zeros_outside_and_non_finite_values_stay_flagged():
    mask = np.zeros((20, 20, 1), bool)
    mask[5:15, 5:15] = True
    values = np.full(int(mask.sum()), 4.0, np.float32)
    values[7] = np.nan
    out = median_in_plane(values, mask, median_footprint(9.0, (1.8, 1.8)))
    assert np.isnan(out[7])
    assert np.allclose(np.delete(out, 7), 4.0)  # no zeros from outside the brain at the edge


def test_it_shrinks_noise_and_keeps_a_step():
    """A Tmax step (2 s -> 9 s) with +-0.6 s noise: the spread falls, the step stays in place."""
    rng = np.random.default_rng(1)
    mask = np.ones((40, 40, 1), bool)
    truth = np.where(np.arange(40)[:, None, None] < 20, 2.0, 9.0) * np.ones((40, 40, 1))
    values = (truth + rng.normal(0, 0.6, truth.shape)).astype(np.float32)[mask]
    out = median_in_plane(values, mask, median_footprint(9.0, (1.8, 1.8))).reshape(40, 40, 1)
    err_before = np.median(np.abs(values.reshape(40, 40, 1) - truth))
    err_after = np.median(np.abs(out - truth))
    assert err_after < 0.6 * err_before  # measured 0.12 against 0.41
    assert ((out > 6) == (truth > 6)).mean() > 0.99
