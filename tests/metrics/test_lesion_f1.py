"""Lesion-wise F1 by each challenge's definition: ISLES'22 (any overlap) and ISLES'24 (one-to-one
matching at IoU >= 0.2, as panoptica's naive threshold matching)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from strokesynth.metrics.segmentation import (
    ISLES24_MATCH_IOU,
    evaluate_case,
    lesion_counts,
    lesion_counts_isles24,
    lesion_f1,
)


def _brute_force_tp(pred: np.ndarray, ref: np.ndarray, iou: float) -> int:
    """The greedy matching written out the slow way: every component pair's IoU from the full
    masks, pairs in decreasing IoU (ties by the higher labels), one match per component."""
    s = np.ones((3,) * ref.ndim, bool)
    rl, nr = ndimage.label(ref, s)
    pl, npred = ndimage.label(pred, s)
    pairs = []
    for r, p in itertools.product(range(1, nr + 1), range(1, npred + 1)):
        a, b = rl == r, pl == p
        inter = int((a & b).sum())
        if inter:
            pairs.append((inter / float((a | b).sum()), r, p))
    used_r, used_p, tp = set(), set(), 0
    for score, r, p in sorted(pairs, reverse=True):
        if score >= iou and r not in used_r and p not in used_p:
            used_r.add(r)
            used_p.add(p)
            tp += 1
    return tp


def _random_pair(rng: np.random.Generator, shape=(24, 24, 6)) -> tuple[np.ndarray, np.ndarray]:
    """Blobs that touch, split, merge, shift and speckle (and sometimes nothing)."""
    def blobs(n: int) -> np.ndarray:
        m = np.zeros(shape, bool)
        for _ in range(n):
            c = rng.integers(0, shape)
            r = rng.integers(1, 5)
            sl = tuple(slice(max(0, int(ci) - r), int(ci) + r) for ci in c)
            m[sl] = True
        return m

    ref = blobs(int(rng.integers(0, 5)))
    kind = rng.integers(0, 4)
    if kind == 0:  # a shifted copy
        pred = np.roll(ref, tuple(rng.integers(-3, 4, size=3)), axis=(0, 1, 2))
    elif kind == 1:  # eroded (splits) or dilated (merges)
        pred = ndimage.binary_dilation(ref, iterations=2) if rng.random() < 0.5 else ndimage.binary_erosion(ref)
    elif kind == 2:  # unrelated blobs
        pred = blobs(int(rng.integers(0, 5)))
    else:  # the reference with speckle
        pred = ref | (rng.random(shape) < 0.01)
    return pred, ref


def test_isles24_counts_equal_a_brute_force_matching_on_200_pairs():
    rng = np.random.default_rng(24)
    lower = 0
    for _ in range(200):
        pred, ref = _random_pair(rng)
        c24 = lesion_counts_isles24(pred, ref)
        assert c24["tp"] == _brute_force_tp(pred, ref, ISLES24_MATCH_IOU)
        c22 = lesion_counts(pred, ref)
        assert (c24["ref_lesions"], c24["pred_lesions"]) == (c22["ref_lesions"], c22["pred_lesions"])
        f22, f24 = lesion_f1(c22), lesion_f1(c24)
        assert f24 <= f22 + 1e-12  # one-to-one at an IoU is never more lenient than any overlap
        lower += f24 < f22
    assert lower > 20  # the definitions differ on many of these pairs


def test_the_two_definitions_on_a_split_lesion():
    ref = np.zeros((20, 20, 3), bool)
    ref[2:18, 5:15, 1] = True  # one lesion
    pred = np.zeros_like(ref)
    pred[2:9, 5:15, 1] = pred[11:18, 5:15, 1] = True  # found as two halves, IoU 0.44 each
    out = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    assert out["lesion_f1"] == 1.0  # ISLES'22: the lesion is found, no prediction is false
    assert out["lesion_f1_isles24"] == pytest.approx(2 / 3)  # ISLES'24: one match, one extra prediction
    empty = np.zeros_like(ref)
    assert evaluate_case(empty, empty, (1.0, 1.0, 1.0))["lesion_f1_isles24"] == 1.0
    assert evaluate_case(pred, empty, (1.0, 1.0, 1.0))["lesion_f1_isles24"] == 0.0


@pytest.mark.parametrize("iou", [ISLES24_MATCH_IOU, 0.5])
def test_isles24_f1_equals_panoptica(iou):
    """At the challenge's 0.2 and at 0.5, panoptica's default (what the organisers' repository ran
    until the threshold changed)."""
    panoptica = pytest.importorskip("panoptica", reason="panoptica (the ISLES'24 evaluation's library) not installed")
    evaluator = panoptica.Panoptica_Evaluator(
        expected_input=panoptica.InputType.SEMANTIC,
        instance_approximator=panoptica.ConnectedComponentsInstanceApproximator(),
        instance_matcher=panoptica.NaiveThresholdMatching(matching_threshold=iou))
    rng = np.random.default_rng(7)
    for _ in range(60):
        pred, ref = _random_pair(rng)
        if not pred.any() and not ref.any():
            continue
        result = evaluator.evaluate(pred.astype(np.int32), ref.astype(np.int32), verbose=False)["ungrouped"]
        result = result[0] if isinstance(result, tuple) else result  # (result, timing) before panoptica 2
        assert lesion_f1(lesion_counts_isles24(pred, ref, iou)) == pytest.approx(result.rq)
