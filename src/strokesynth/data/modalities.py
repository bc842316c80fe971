"""The modality keys strokesynth knows, with their dimensionality, kind and unit.

A key names what a volume *is*, whatever layout it came from. Readers map their own file
names onto these keys; writers map them back. Later systems add keys (for example a
generated DWI) with :func:`register_modality`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from strokesynth.errors import DataError

Kind = Literal["image", "label"]


@dataclass(frozen=True)
class Modality:
    """What a modality key stands for.

    Attributes:
        key: the key, lower case (``"cbf"``).
        ndim: 3 for (x, y, z) volumes, 4 for (x, y, z, t) series.
        kind: ``"image"`` (float intensities) or ``"label"`` (non-negative integers).
        unit: physical unit of the voxel values (``"HU"``, ``"ml/100g/min"``, ``"a.u."``...).
        description: one line for help texts and reports.
    """

    key: str
    ndim: int
    kind: Kind
    unit: str
    description: str


_REGISTRY: dict[str, Modality] = {}


def register_modality(modality: Modality, *, replace: bool = False) -> None:
    """Add a modality key (e.g. a synthetic DWI) so readers, writers and checks accept it."""
    if modality.key in _REGISTRY and not replace:
        raise ValueError(f"modality {modality.key!r} is already registered")
    if modality.ndim not in (3, 4):
        raise ValueError("ndim must be 3 or 4")
    _REGISTRY[modality.key] = modality


for _m in (
    Modality("ct", 3, "image", "HU", "non-contrast CT"),
    Modality("ctp", 4, "image", "HU", "raw 4D CT perfusion series (x, y, z, t)"),
    Modality("cta", 3, "image", "HU", "CT angiography"),
    Modality("lvo", 3, "label", "label", "large-vessel occlusion mask (from the CTA)"),
    Modality("cow", 3, "label", "label", "Circle of Willis label map (from the CTA)"),
    Modality("cbf", 3, "image", "ml/100g/min", "cerebral blood flow"),
    Modality("cbv", 3, "image", "ml/100g", "cerebral blood volume"),
    Modality("mtt", 3, "image", "s", "mean transit time"),
    Modality("tmax", 3, "image", "s", "time to maximum of the residue function"),
    Modality("dwi", 3, "image", "a.u.", "diffusion-weighted MRI (b=1000)"),
    Modality("dwi_gen", 3, "image", "a.u. [0, 1]", "DWI synthesised from CTP (normalised DWI units)"),
    Modality("cta_mip", 3, "image", "HU", "temporal MIP of the 4D CTP over its bolus window (CTA feature)"),
    Modality("cta_bolus", 4, "image", "HU", "bolus window of the 4D CTP resampled to a few frames (CTA feature)"),
    Modality("dwi_pseudo", 3, "image", "a.u. [0, 1]", "pseudo-DWI synthesised from perfusion maps and CTA features"),
    Modality("adc", 3, "image", "1e-6 mm^2/s", "apparent diffusion coefficient"),
    Modality("flair", 3, "image", "a.u.", "FLAIR MRI"),
    Modality("t1", 3, "image", "a.u.", "T1-weighted MRI"),
    Modality("lesion", 3, "label", "label", "infarct lesion mask (0 background, 1 lesion)"),
    Modality("anatomy", 3, "label", "label", "anatomical label map"),
    Modality("brain", 3, "label", "label", "brain mask (0 outside, 1 brain)"),
    Modality("dwi_brain", 3, "image", "a.u.", "skull-stripped DWI (0 outside the brain mask)"),
    Modality("adc_brain", 3, "image", "1e-6 mm^2/s", "skull-stripped ADC"),
    Modality("flair_brain", 3, "image", "a.u.", "skull-stripped FLAIR"),
    Modality("t1_brain", 3, "image", "a.u.", "skull-stripped T1-weighted MRI"),
    Modality("core", 3, "label", "label", "infarct core mask"),
    Modality("penumbra", 3, "label", "label", "penumbra mask"),
):
    register_modality(_m)


def get_modality(key: str, where: str | None = None) -> Modality:
    """Look a key up, raising a :class:`DataError` naming ``where`` if it is unknown."""
    try:
        return _REGISTRY[key]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise DataError(where, f"unknown modality {key!r} (known: {known})") from None


def known_modalities() -> list[str]:
    """All registered keys, sorted."""
    return sorted(_REGISTRY)


def is_label(key: str) -> bool:
    """Whether ``key`` holds a label map (nearest-neighbour resampling, integer values)."""
    return get_modality(key).kind == "label"
