"""Lesion sizes and coverage of the phantom's stroke slabs (ISLES 2018 proportions)."""

from __future__ import annotations

import numpy as np
import pytest

from strokesynth.phantom import PhantomConfig, generate_cohort
from strokesynth.phantom.cohort import cohort_summary
from strokesynth.phantom.lesion_size import draw_target_ml, group_position, size_group, size_position

ISLES_2018 = (0.39, 0.43, 0.17)  #: Wang et al.'s test split: < 10, 10-50, > 50 ml
#: absolute, per group (the issue's band); measured <= 0.056 on seeds 0-9 (40 subjects, 64 px)
TOLERANCE = 0.10
SEEDS = (0, 1, 2, 3, 4)


@pytest.fixture(scope="module", params=SEEDS)
def cohort40(request):
    cfg = PhantomConfig(subjects=40, seed=request.param)
    cfg.grid.spacing_mm *= cfg.grid.size / 64
    cfg.grid.size = 64
    return cfg, generate_cohort(cfg, images=False)


def test_sized_slabs_follow_the_isles_2018_proportions_on_every_seed(cohort40):
    cfg, scans = cohort40
    groups = cohort_summary(scans)["subjects_by_size"]
    n = sum(groups.values())
    assert 33 <= n <= 37  # 40 subjects less the 12 % without a core, spread evenly (measured 35-36)
    for got, want in zip(groups.values(), ISLES_2018, strict=True):
        assert abs(got / n - want) <= TOLERANCE, (cfg.seed, groups)


def test_each_sized_slab_lands_in_its_target_group(cohort40):
    cfg, scans = cohort40
    sized = [s for s in scans if s.info["lesion_placement"]["sized_slab"]]
    hits = [size_group(s.info["core_ml"], cfg.stroke.size_bounds_ml)
            == size_group(s.info["lesion_placement"]["size_fit"]["target_ml"], cfg.stroke.size_bounds_ml)
            for s in sized]
    assert np.mean(hits) >= 0.94  # measured 351 of 352 on seeds 0-9, 34 of 35 the lowest (targets keep off the bounds)
    # the rendered volume is close to the fitted estimate (same rule, finer grid)
    for s in sized:
        fit = s.info["lesion_placement"]["size_fit"]
        if fit["target_ml"] >= 5 and fit["estimated_ml"] >= 0.8 * fit["target_ml"]:
            assert abs(s.info["core_ml"] / fit["estimated_ml"] - 1) < 0.35, (s.case.id, fit, s.info["core_ml"])


def test_every_stroke_subject_with_a_core_has_it_in_its_sized_slab(cohort40):
    _, scans = cohort40
    with_core = {s.case.subject for s in scans if s.info["stroke"] is not None and s.info["stroke"]["core_radius_mm"] > 0}
    sized = {s.case.subject: s.info["core_ml"] for s in scans if s.info["lesion_placement"]["sized_slab"]}
    assert with_core and set(sized) == with_core
    assert min(sized.values()) > 0


def test_the_sequence_spreads_no_core_subjects_and_groups_over_any_prefix():
    """Every prefix of a cohort holds the groups in proportion (adding subjects keeps the earlier ones)."""
    cfg = PhantomConfig().stroke
    for seed in range(20):
        u = np.array([group_position(cfg, seed, i) for i in range(40)])
        assert u[0] >= cfg.no_core_prob  # the first subject has a core
        assert abs((u < cfg.no_core_prob).sum() - 40 * cfg.no_core_prob) <= 1.5
        groups = [size_group(draw_target_ml(cfg, np.random.default_rng(i), size_position(cfg, seed, i)),
                             cfg.size_bounds_ml) for i in range(40) if u[i] >= cfg.no_core_prob]
        for n in (10, 20, len(groups)):
            share = np.bincount(groups[:n], minlength=3) / n
            assert np.abs(share - np.asarray(ISLES_2018) / sum(ISLES_2018)).max() <= 1.5 / n + 0.02, (seed, n, share)


def test_a_configurable_chance_of_missing_the_slab():
    cfg = PhantomConfig(subjects=12, seed=3)
    cfg.grid.spacing_mm *= cfg.grid.size / 48
    cfg.grid.size = 48
    cfg.stroke.slab_miss_prob = 1.0
    cfg.stroke.no_core_prob = 0.0
    missed = generate_cohort(cfg, images=False)
    assert cohort_summary(missed)["slabs_missing_the_lesion"] == len(missed)
    cfg.stroke.slab_miss_prob = 0.0
    placed = generate_cohort(cfg, images=False)
    # measured: 8 of 13 scans without core and median 0.0 ml when missed; 1 of 13 and 11.2 ml when placed
    assert sum(s.info["core_ml"] == 0 for s in missed) >= len(missed) // 2
    assert sum(s.info["core_ml"] == 0 for s in placed) <= 2
    assert np.median([s.info["core_ml"] for s in placed]) > 5 * max(np.median([s.info["core_ml"] for s in missed]), 0.5)


def test_target_volumes_follow_the_group_probabilities():
    cfg = PhantomConfig().stroke
    rng = np.random.default_rng(0)
    v = np.array([draw_target_ml(cfg, rng) for _ in range(4000)])
    share = np.bincount([size_group(x, cfg.size_bounds_ml) for x in v], minlength=3) / len(v)
    p = np.asarray(cfg.size_group_probs) / sum(cfg.size_group_probs)
    assert np.abs(share - p).max() < 0.03
    assert v.min() >= cfg.size_range_ml[0] and v.max() <= cfg.size_range_ml[1]


def test_bad_size_settings_are_one_clear_error():
    from strokesynth.errors import ConfigError

    cfg = PhantomConfig().stroke
    cfg.size_group_probs = (0.0, 0.0, 0.0)
    with pytest.raises(ConfigError, match="size_group_probs"):
        draw_target_ml(cfg, np.random.default_rng(0))
    cfg = PhantomConfig().stroke
    cfg.size_bounds_ml = (60.0, 50.0)
    with pytest.raises(ConfigError, match="size_bounds_ml"):
        draw_target_ml(cfg, np.random.default_rng(0))
