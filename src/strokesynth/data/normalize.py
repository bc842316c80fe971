"""Per-modality intensity normalisation, configurable, applied per volume.

Methods (``NormSpec.method``):

- ``window``: clip to [low, high] in the volume's unit and map linearly to [0, 1]. The CT
  default is the brain window (level 40 HU, width 80 HU -> [0, 80] HU).
- ``percentile``: map the ``low``-th..``high``-th percentile of the statistics voxels to [0, 1]
  (clipped unless ``clip`` is false). Perfusion maps default to 1st..99th percentile of the
  non-zero voxels (a robust per-volume scaling that is blind to the vendor's units); DWI to
  0th..99th (min to 99th percentile), as in the pseudo-DWI and label-map papers. A synthesised
  DWI (``dwi_gen``) is already in those normalised units and gets the [0, 1] window.
- ``zscore``: subtract the mean and divide by the standard deviation of the statistics voxels.
- ``none``: leave values as they are.

``stats_on`` picks the voxels statistics come from: ``"nonzero"`` (brain in skull-stripped
maps), ``"all"``, or ``"foreground"`` (voxels above the volume's mean: the head in an MR image
with a noisy background). ``span`` stretches the window/percentile range to [0, span] instead
of [0, 1]: the CT-to-MR cGAN maps the DWI's foreground median to 0.4 (0th..50th percentile of
the foreground, span 0.4), so normal tissue gets the same value in every scan whatever the
lesion's size, and a lesion up to 2.5x brighter stays below the clip at 1. A 4D series is normalised as one array (all frames together), so the bolus
shape is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from strokesynth.errors import ConfigError

Method = Literal["window", "percentile", "zscore", "none"]


@dataclass(frozen=True)
class NormSpec:
    """How to normalise one modality (see module docstring).

    Attributes:
        method: ``window``, ``percentile``, ``zscore`` or ``none``.
        low: window floor (volume units) or lower percentile (0..100).
        high: window ceiling or upper percentile.
        stats_on: ``"nonzero"``, ``"all"`` or ``"foreground"`` voxels for percentile/zscore statistics.
        clip: clip the result to [0, 1] (window/percentile).
        span: value the ``high`` end maps to (window/percentile; 1 by default).
    """

    method: Method = "percentile"
    low: float = 1.0
    high: float = 99.0
    stats_on: Literal["nonzero", "all", "foreground"] = "nonzero"
    clip: bool = True
    span: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in ("window", "percentile", "zscore", "none"):
            raise ConfigError("normalization", f"unknown method {self.method!r}")
        if self.method in ("window", "percentile") and not self.high > self.low:
            raise ConfigError("normalization", f"high ({self.high}) must exceed low ({self.low})")
        if self.method == "percentile" and not (0 <= self.low < self.high <= 100):
            raise ConfigError("normalization", "percentiles must satisfy 0 <= low < high <= 100")
        if self.stats_on not in ("nonzero", "all", "foreground"):
            raise ConfigError("normalization", f"stats_on must be 'nonzero', 'all' or 'foreground', "
                                               f"not {self.stats_on!r}")
        if not self.span > 0:
            raise ConfigError("normalization", f"span must be positive, got {self.span}")


def default_normalization() -> dict[str, NormSpec]:
    """The defaults per modality key (documented in the module docstring)."""
    perf = NormSpec("percentile", 1.0, 99.0, "nonzero")
    return {
        "ct": NormSpec("window", 0.0, 80.0),
        "ctp": NormSpec("window", 0.0, 150.0),
        "cta_mip": NormSpec("window", 0.0, 100.0),
        "cta_bolus": NormSpec("window", 0.0, 100.0),
        "cbf": perf,
        "cbv": perf,
        "mtt": perf,
        "tmax": perf,
        "dwi": NormSpec("percentile", 0.0, 99.0, "nonzero"),
        "dwi_gen": NormSpec("window", 0.0, 1.0),
        "dwi_pseudo": NormSpec("window", 0.0, 1.0),
        "adc": perf,
        "flair": perf,
        "t1": perf,
    }


@dataclass
class Normalization:
    """Modality key -> :class:`NormSpec`; keys not listed use ``fallback``."""

    specs: dict[str, NormSpec] = field(default_factory=default_normalization)
    fallback: NormSpec = field(default_factory=lambda: NormSpec("percentile", 1.0, 99.0, "nonzero"))

    def spec(self, key: str) -> NormSpec:
        return self.specs.get(key, self.fallback)

    def __call__(self, key: str, array: np.ndarray) -> np.ndarray:
        return normalize(array, self.spec(key))

    def fingerprint(self) -> str:
        """A stable text for cache keys."""
        items = sorted((k, repr(v)) for k, v in self.specs.items())
        return repr((items, repr(self.fallback)))


def normalize(array: np.ndarray, spec: NormSpec) -> np.ndarray:
    """Normalise ``array`` (any shape) as ``spec`` says; returns float32 of the same shape."""
    x = np.asarray(array, dtype=np.float32)
    if spec.method == "none":
        return x.copy()
    if spec.method == "window":
        out = (x - spec.low) / (spec.high - spec.low) * spec.span
        return np.clip(out, 0.0, 1.0) if spec.clip else out
    if spec.stats_on == "nonzero":
        values = x[x != 0]
    elif spec.stats_on == "foreground":
        values = x[x > x.mean()]
    else:
        values = x.ravel()
    if values.size == 0:
        return np.zeros_like(x)
    if spec.method == "zscore":
        mean, std = float(values.mean()), float(values.std())
        return (x - mean) / std if std > 0 else x - mean
    lo, hi = np.percentile(values, [spec.low, spec.high])
    if not hi > lo:
        return np.zeros_like(x) if hi == lo == 0 else np.clip(x / max(abs(hi), 1e-12), 0, 1)
    out = (x - np.float32(lo)) / np.float32(hi - lo) * np.float32(spec.span)
    return np.clip(out, 0.0, 1.0) if spec.clip else out


def to_signed(x):
    """[0, 1] -> [-1, 1] (tanh generators' range): ``2x - 1``; tensors or arrays."""
    return x * 2 - 1


def from_signed(x):
    """[-1, 1] -> [0, 1]: ``(x + 1) / 2``; tensors or arrays."""
    return (x + 1) / 2
