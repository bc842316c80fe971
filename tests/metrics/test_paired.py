"""Paired comparisons count a case as better in the metric's own direction."""

from __future__ import annotations

from strokesynth.metrics.paired import LOWER_IS_BETTER, paired_values


def test_better_means_higher_dice_and_lower_distance_or_volume_error():
    a = {"c1": 0.5, "c2": 0.4, "c3": 0.3}
    b = {"c1": 0.6, "c2": 0.5, "c3": 0.2}
    dice = paired_values(a, b, "A", "B", "dice")
    assert (dice["better"], dice["worse"]) == (2, 1) and not dice["lower_is_better"]
    # the same numbers as distances: B's larger values are worse
    hd95 = paired_values(a, b, "A", "B", "hd95")
    assert (hd95["better"], hd95["worse"]) == (1, 2) and hd95["lower_is_better"]
    assert hd95["mean_diff"] == dice["mean_diff"]  # the difference itself keeps its sign (b - a)
    assert {"hd", "hd95", "assd", "avd_ml", "lesion_count_diff"} <= LOWER_IS_BETTER
    assert "rve" not in LOWER_IS_BETTER  # signed: neither direction is better
