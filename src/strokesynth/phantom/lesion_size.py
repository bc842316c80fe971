"""Lesion volume within a slab: draw a target in ISLES-2018-like size groups and fit the core radius.

ISLES 2018 CTP slabs were placed over the lesion; Wang et al.'s test split held 39 % small
(< 10 ml), 43 % medium (10-50 ml) and 17 % large (> 50 ml) cores. A phantom subject's core
is drawn as an irregular ball around a seed inside the slab; its volume *within the slab*
depends on the radius, the slab's thickness, the territory and the parenchyma. So a target
volume is drawn first (a size group, then log-uniform within the group) and the radius that
gives that volume in the slab is found by bisection on the slab's grid at half the in-plane
resolution (the core volume never decreases with the radius).

Whether a stroke subject has a core, and its size group, are not drawn independently: subject
``i`` of a cohort sits at ``u = (start + i / phi) mod 1`` (a golden-ratio Weyl sequence, ``start``
from the seed, above ``no_core_prob`` so that subject 1 has a core); ``u < stroke.no_core_prob``
means no core, and the rest of [0, 1), stretched to [0, 1), is split by the size-group
probabilities. So every cohort holds no-core subjects and the
groups in proportion to within about one subject on any seed, and adding subjects leaves the
earlier ones as they were. With independent draws a 40-subject cohort's shares had a standard
deviation of 6-8 points (two of six seeds more than 10 points off 39/43/17 %). Targets keep
:data:`EDGE_MARGIN` away from the bounds between groups, because the rendered core differs from
the half-resolution estimate by a few per cent (a 10.8 ml target rendered 9.7 ml).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from strokesynth.errors import ConfigError
from strokesynth.phantom.anatomy import sample_tissue
from strokesynth.phantom.atlas import mni_atlas
from strokesynth.phantom.config import StrokeConfig
from strokesynth.phantom.stroke import Stroke, side_of, territory_of

if TYPE_CHECKING:
    from strokesynth.phantom.scan import SubjectDraw

RADIUS_MM = (1.0, 90.0)  #: bisection bracket of the core radius
GOLDEN_STEP = (np.sqrt(5.0) - 1.0) / 2.0  #: 1 / golden ratio: the Weyl sequence's step between subjects
GROUP_STREAM = 0xFFFF_FFFF  #: the seed's own random stream ``(seed, GROUP_STREAM)`` for the sequence's start
EDGE_MARGIN = 1.15  #: targets stay this factor inside the bounds between size groups


def group_position(cfg: StrokeConfig, seed: int, index: int) -> float:
    """Subject ``index``'s point in [0, 1) on the cohort's sequence (module docstring). The start
    is drawn above ``cfg.no_core_prob``, so the first stroke subject of every cohort has a core."""
    p0 = min(max(float(cfg.no_core_prob), 0.0), 1.0)
    start = p0 + (1.0 - p0) * float(np.random.default_rng([seed, GROUP_STREAM]).random())
    return float((start + index * GOLDEN_STEP) % 1.0)


def size_position(cfg: StrokeConfig, seed: int, index: int) -> float:
    """Subject ``index``'s point on the size groups: its :func:`group_position` above
    ``cfg.no_core_prob`` (below it the subject has no core) stretched to [0, 1)."""
    u, p0 = group_position(cfg, seed, index), float(cfg.no_core_prob)
    return float(np.clip((u - p0) / (1.0 - p0), 0.0, np.nextafter(1.0, 0.0))) if p0 < 1 else 0.0


def size_group(volume_ml: float, bounds: tuple[float, ...]) -> int:
    """Index of the size group of ``volume_ml`` (groups split at ``bounds``, ml; a bound belongs to the upper group)."""
    return int(np.searchsorted(np.asarray(bounds, float), volume_ml, side="right"))


def draw_target_ml(cfg: StrokeConfig, rng: np.random.Generator, position: float | None = None) -> float:
    """A core volume (ml) for the slab: a group by ``cfg.size_group_probs``, log-uniform inside it.

    ``position`` (in [0, 1), from :func:`size_position`) picks the group where it falls on the
    cumulative probabilities; without it the group is drawn from ``rng``. Either way one number is
    taken from ``rng`` for the group, so the subject's later draws do not depend on ``position``.
    """
    edges = [cfg.size_range_ml[0], *cfg.size_bounds_ml, cfg.size_range_ml[1]]
    p = np.asarray(cfg.size_group_probs, float)
    if len(p) != len(edges) - 1 or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise ConfigError("stroke.size_group_probs", f"need {len(edges) - 1} non-negative weights with a positive "
                          f"sum (one per size group), got {list(cfg.size_group_probs)}")
    if not (0 < edges[0] and all(a < b for a, b in zip(edges[:-1], edges[1:], strict=True))):
        raise ConfigError("stroke.size_bounds_ml", f"size_range_ml and size_bounds_ml must rise from above 0: {edges}")
    if position is None:
        g = int(rng.choice(len(p), p=p / p.sum()))
    else:
        rng.random()  # the draw the group would take: keeps every later draw of the subject in place
        g = min(int(np.searchsorted(np.cumsum(p) / p.sum(), position, side="right")), len(p) - 1)
        while p[g] == 0:  # a position on the edge of an empty group
            g -= 1
    lo = edges[g] * (EDGE_MARGIN if g > 0 else 1.0)
    hi = edges[g + 1] / (EDGE_MARGIN if g < len(p) - 1 else 1.0)
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def slab_core_ml(stroke: Stroke, draw: SubjectDraw, affine: np.ndarray, shape: tuple[int, int, int],
                 core_threshold: float) -> Callable[[float], float]:
    """A function ``radius (mm) -> core volume (ml)`` of ``stroke`` inside the slab ``affine``/``shape``.

    The slab is sampled at half its in-plane resolution with one sample per slice; the core is
    parenchyma (GM + WM >= 0.5) whose relative CBF falls below ``core_threshold``, as in the
    phantom's ground truth.
    """
    coarse = affine.copy()
    coarse[:3, :2] *= 2
    coarse[:3, 3] += 0.5 * (affine[:3, 0] + affine[:3, 1])  # centre of the 2x2 block
    cshape = (max(shape[0] // 2, 1), max(shape[1] // 2, 1), shape[2])
    tissue = sample_tissue(mni_atlas(), draw.warp, coarse, cshape, 1)
    keep = (tissue.parenchyma >= 0.5).ravel()
    mni = tissue.mni.reshape(-1, 3)[keep].astype(np.float64)
    terr = territory_of(mni, draw.jitter(mni) * 4.0)
    inside = (terr == stroke.territory) & (side_of(mni) == stroke.side)
    mni, terr = mni[inside], terr[inside]
    voxel_ml = float(abs(np.linalg.det(coarse[:3, :3]))) / 1000.0
    trial = copy.copy(stroke)

    def volume(radius: float) -> float:
        if len(mni) == 0:
            return 0.0
        trial.core_radius = radius
        trial.hypo_radius = radius * stroke.hypo_radius / max(stroke.core_radius, 1e-6)
        return float((trial.fields(mni, terr)["rcbf"] < core_threshold).sum()) * voxel_ml

    return volume


def fit_core_radius(volume: Callable[[float], float], target_ml: float, iterations: int = 20) -> tuple[float, float]:
    """The radius (mm) in :data:`RADIUS_MM` whose core volume is closest to ``target_ml``, and that volume."""
    lo, hi = RADIUS_MM
    if volume(hi) <= target_ml:
        return hi, volume(hi)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if volume(mid) < target_ml:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda r: abs(volume(r) - target_ml))
    return best, volume(best)


__all__ = ["EDGE_MARGIN", "GOLDEN_STEP", "RADIUS_MM", "draw_target_ml", "fit_core_radius", "group_position",
           "size_position", "size_group", "slab_core_ml"]
