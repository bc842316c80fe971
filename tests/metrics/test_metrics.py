"""Segmentation metrics against MedPy on random, edge-touching and phantom-shaped masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from strokesynth.metrics import evaluate_case, lesion_counts, size_group, summarize, summarize_by_size

binary = pytest.importorskip("medpy.metric.binary")


def _blobs(rng, shape, n, sigma):
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field > np.quantile(field, 1 - n)


def _medpy(pred, ref, spacing):
    return {
        "dice": binary.dc(pred, ref), "hd": binary.hd(pred, ref, spacing), "hd95": binary.hd95(pred, ref, spacing), "assd": binary.assd(pred, ref, spacing),
        "precision": binary.precision(pred, ref), "recall": binary.recall(pred, ref), "rve": binary.ravd(pred, ref),
    }


def _check(pred, ref, spacing):
    ours = evaluate_case(pred, ref, spacing)
    for key, value in _medpy(pred, ref, spacing).items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key


def test_agrees_with_medpy_on_random_masks():
    rng = np.random.default_rng(0)
    for i in range(40):
        shape = tuple(int(s) for s in rng.integers(6, 40, size=3 if i % 4 else 2))
        spacing = tuple(float(s) for s in rng.uniform(0.5, 5.0, size=len(shape)))
        ref = _blobs(rng, shape, rng.uniform(0.02, 0.3), rng.uniform(0.8, 3))
        pred = _blobs(rng, shape, rng.uniform(0.02, 0.3), rng.uniform(0.8, 3)) | (ref & (rng.uniform(size=shape) < 0.5))
        if i % 5 == 0:  # masks touching the array edge (MedPy counts edge voxels as surface)
            ref[0] = True
            pred[..., -1] = True
        _check(pred, ref, spacing)


def test_agrees_with_medpy_on_phantom_shaped_masks(tiny_phantom):
    for scan in tiny_phantom:
        ref = scan.truth["core"].array > 0
        if not ref.any():
            continue
        spacing = scan.case.spacing
        # an imperfect prediction: shifted by one voxel, eroded in places, plus a false positive blob
        pred = np.roll(ref, 1, axis=0) & ~(np.random.default_rng(1).uniform(size=ref.shape) < 0.1)
        pred[5:8, 5:8, 0] = True
        _check(pred, ref, spacing)
        _check(ref, ref, spacing)


def test_empty_mask_rule():
    z = np.zeros((8, 8, 3), bool)
    one = z.copy()
    one[2:4, 2:4, 1] = True
    both = evaluate_case(z, z, (1, 1, 1))
    assert both["dice"] == 1 and both["hd"] == 0 and both["precision"] == 1 and both["lesion_f1"] == 1
    miss = evaluate_case(z, one, (1, 1, 1))
    assert miss["dice"] == 0 and miss["recall"] == 0 and math.isnan(miss["precision"]) and math.isnan(miss["hd"])
    alarm = evaluate_case(one, z, (1, 1, 1))
    assert alarm["dice"] == 0 and alarm["precision"] == 0 and math.isnan(alarm["recall"]) and math.isnan(alarm["rve"])
    assert alarm["avd_ml"] == pytest.approx(4 / 1000)
    s = summarize([both, miss, alarm])
    assert s["dice"]["n"] == 3 and s["hd"]["undefined"] == 2 and s["hd"]["mean"] == 0  # misses counted, not dropped


def test_lesion_wise_counts_use_26_connectivity():
    ref = np.zeros((10, 10, 4), bool)
    ref[1, 1, 1] = ref[2, 2, 2] = True  # diagonal neighbours: one lesion with 26-connectivity
    ref[7:9, 7:9, 1] = True  # a second lesion
    pred = np.zeros_like(ref)
    pred[2, 2, 2] = True  # hits the first
    pred[5, 0, 0] = True  # a false positive
    c = lesion_counts(pred, ref)
    assert (c["ref_lesions"], c["tp"], c["fn"], c["fp"]) == (2, 1, 1, 1)
    assert evaluate_case(pred, ref, (1, 1, 1))["lesion_f1"] == pytest.approx(2 / (2 + 1 + 1))


def test_size_groups_and_volume_units():
    assert [size_group(v) for v in (0, 9.9, 10, 50, 50.1)] == ["<10 ml", "<10 ml", "10-50 ml", "10-50 ml", ">50 ml"]
    ref = np.zeros((20, 20, 4), bool)
    ref[:10, :10, :2] = True  # 200 voxels of 2x2x5 mm = 4 ml
    out = evaluate_case(ref, ref, (2.0, 2.0, 5.0))
    assert out["ref_ml"] == pytest.approx(4.0) and out["avd_ml"] == 0
    groups = summarize_by_size([out])
    assert groups["<10 ml"]["dice"]["n"] == 1 and groups[">50 ml"]["dice"]["n"] == 0
