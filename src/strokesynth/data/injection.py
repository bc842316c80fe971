"""Lesion injection (Platscher et al.): a generated 3D lesion mask written into a healthy label map.

The mask is cut to the parenchyma (grey and white matter and deep grey nuclei, never background,
CSF or ventricles); what is left must have at least ``min_voxels`` voxels, otherwise another mask
is drawn, up to ``retries`` times, after which the injection fails with a clear error.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from strokesynth.data.label_maps import LabelTable
from strokesynth.data.mr_volumes import MIN_LESION_VOXELS
from strokesynth.errors import DataError

#: class names counted as parenchyma (a lesion may only lie there)
PARENCHYMA = re.compile(r"(^|_)(gm|wm|cortex|deep_grey|thalamus|caudate|putamen|pallidum|hippocampus|amygdala|"
                        r"ventral_dc|cerebral_wm|wm_hypointensities)(_|$)")


def parenchyma_classes(table: LabelTable) -> list[int]:
    """Class ids of the table that are parenchyma (see :data:`PARENCHYMA`)."""
    ids = [i for i, c in enumerate(table.classes[:-1]) if PARENCHYMA.search(c)]
    if not ids:
        raise DataError(table.name, "no class of this label table is grey or white matter (nothing to inject into)")
    return ids


def inject(classes: np.ndarray, mask: np.ndarray, table: LabelTable, *, min_voxels: int = MIN_LESION_VOXELS
           ) -> np.ndarray | None:
    """The lesion ``mask ∩ parenchyma`` as a bool array, or ``None`` when it has fewer than ``min_voxels``."""
    if mask.shape != classes.shape:
        raise ValueError(f"lesion mask {mask.shape} and label map {classes.shape} differ in shape")
    lesion = np.asarray(mask, bool) & np.isin(classes, parenchyma_classes(table))
    return lesion if int(lesion.sum()) >= min_voxels else None


def inject_with_retries(classes: np.ndarray, draw: Callable[[], np.ndarray], table: LabelTable, *,
                        retries: int = 50, min_voxels: int = MIN_LESION_VOXELS, where: str = "injection"
                        ) -> tuple[np.ndarray, np.ndarray, int]:
    """Draw masks with ``draw()`` until one fits (see the module docstring).

    Returns:
        ``(classes with the lesion class written, lesion mask, attempts used)``.

    Raises:
        DataError: no fitting mask in ``retries`` draws.
    """
    for attempt in range(1, retries + 1):
        lesion = inject(classes, draw(), table, min_voxels=min_voxels)
        if lesion is not None:
            out = classes.copy()
            out[lesion] = table.lesion
            return out, lesion, attempt
    raise DataError(where, f"no generated lesion left {min_voxels} voxels in the parenchyma in {retries} draws "
                           "(is the lesion GAN trained, and on this grid?)")
