"""Baselines without learning that every segmentation table is compared against."""

from __future__ import annotations

import numpy as np

#: the name every table gives the CBF-threshold baseline
BASELINE = "baseline: CBF < 30% of median"


def threshold_core(cbf: np.ndarray, brain: np.ndarray, fraction: float = 0.3) -> np.ndarray:
    """Core by the usual CTP rule: CBF below ``fraction`` of the median CBF of the brain.

    The threshold is fixed in advance (30 %), never fitted to the scored data. Voxels with
    CBF 0 (outside the mask) are never core. Shapes: any; returns a boolean mask of that shape.
    """
    ref = float(np.median(cbf[brain & (cbf > 0)])) if np.any(brain & (cbf > 0)) else 0.0
    return brain & (cbf > 0) & (cbf < fraction * ref)
