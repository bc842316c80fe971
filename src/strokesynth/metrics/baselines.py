"""Baselines without learning that every segmentation table is compared against."""

from __future__ import annotations

import numpy as np

#: the name every table gives the CBF-threshold baseline
BASELINE = "baseline: CBF < 30% of median"
#: the name every table gives the hypoperfusion baseline (Tmax above :data:`TMAX_SECONDS`)
TMAX_BASELINE = "baseline: Tmax > 6 s"
#: both, in the order tables list them
BASELINES = (BASELINE, TMAX_BASELINE)
#: the clinical hypoperfusion threshold, s
TMAX_SECONDS = 6.0
#: the perfusion maps that define the brain of a scan for the baseline
PERFUSION_KEYS = ("cbf", "cbv", "mtt", "tmax")


def threshold_core(cbf: np.ndarray, brain: np.ndarray, fraction: float = 0.3) -> np.ndarray:
    """Core by the usual CTP rule: CBF below ``fraction`` of the median CBF of the brain.

    The threshold is fixed in advance (30 %), never fitted to the scored data. Voxels outside
    ``brain`` are never core; inside it, CBF 0 (e.g. a negative value zeroed by
    :func:`strokesynth.perfusion.maps.physical_limits`) is core. The median is over the brain's
    voxels with CBF > 0. Shapes: any; returns a boolean mask of that shape.
    """
    ref = float(np.median(cbf[brain & (cbf > 0)])) if np.any(brain & (cbf > 0)) else 0.0
    return brain & (cbf < fraction * ref)


def perfusion_brain(maps: dict[str, np.ndarray]) -> np.ndarray:
    """Brain mask of a set of perfusion maps (0 outside the brain): voxels where any map is non-zero.

    CBF alone would drop the brain voxels whose (impossible, negative) CBF was set to 0, which
    sit mostly in the core.
    """
    arrays = [np.asarray(a) for a in maps.values()]
    mask = np.zeros(arrays[0].shape, bool)
    for a in arrays:
        mask |= a != 0
    return mask


def tmax_region(tmax: np.ndarray, brain: np.ndarray, seconds: float = TMAX_SECONDS) -> np.ndarray:
    """The hypoperfused region by the usual CTP rule: Tmax above ``seconds`` (6 s, fixed in advance)
    inside ``brain``. The acute core lies inside it, and so does the final infarct of a patient who
    was not recanalised; a recanalised patient's final infarct is closer to the CBF-threshold core.
    Shapes: any; ``tmax`` in seconds; returns a boolean mask of that shape."""
    return brain & (np.asarray(tmax) > seconds)


def baseline_masks(maps: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """Every baseline a scan's maps allow, as ``(name, mask)``: the CBF-threshold core when ``cbf``
    is there, the Tmax > 6 s region when ``tmax`` is (brain from all maps, :func:`perfusion_brain`)."""
    if not maps:
        return []
    brain = perfusion_brain(maps)
    out = []
    if "cbf" in maps:
        out.append((BASELINE, threshold_core(maps["cbf"], brain)))
    if "tmax" in maps:
        out.append((TMAX_BASELINE, tmax_region(maps["tmax"], brain)))
    return out
