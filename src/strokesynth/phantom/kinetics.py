"""The forward model: arterial input, residue functions and tissue enhancement curves.

Tissue enhancement (HU) of a voxel with flow ``CBF`` (ml/100 g/min), blood volume ``CBV``
(ml/100 g, so ``MTT = 60 CBV / CBF`` s) and bolus delay ``d`` (s) is

    ΔHU(t) = (rho / kh) · CBF / 6000 · ∫ AIF(τ - d) R(t - τ; MTT) dτ,

the inverse of what :func:`strokesynth.perfusion.deconvolve` assumes, so deconvolving with
the same ``kh`` and ``rho`` recovers ``CBF`` and ``CBV = 100 (kh / rho) ∫ΔHU / ∫AIF``.
The integral is tabulated once per scan on a 0.05 s grid for 96 log-spaced MTTs; each voxel
then interpolates linearly in time and in log MTT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from strokesynth.perfusion.aif import gamma_variate

FINE_DT = 0.05  #: s, step of the tabulated convolution
MTT_RANGE = (0.5, 60.0)  #: s, tabulated MTTs


@dataclass
class Bolus:
    """One scan's arterial input: gamma-variate first pass plus a recirculation pass (HU)."""

    t0: float
    alpha: float
    beta: float
    peak: float
    recirculation: float
    recirculation_delay: float

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """AIF enhancement in HU at times ``t`` (s)."""
        first = gamma_variate(t, self.t0, self.alpha, self.beta, self.peak)
        second = gamma_variate(t, self.t0 + self.recirculation_delay, self.alpha, 2 * self.beta,
                               self.recirculation * self.peak)
        return first + second


def residue(t: np.ndarray, mtt: float, kind: str = "exponential", shape: float = 3.0) -> np.ndarray:
    """Residue function ``R(t)`` (``R(0) = 1``, mean transit time ``mtt``) at ``t >= 0`` s.

    ``"exponential"``: ``exp(-t / mtt)`` (well-mixed compartment); ``"gamma"``: the survival
    function of gamma-distributed transit times with the given shape.
    """
    if kind == "exponential":
        return np.exp(-t / mtt)
    if kind == "gamma":
        return special.gammaincc(shape, t * shape / mtt)
    raise ValueError(f"unknown residue kind {kind!r}")


class ResponseTable:
    """Unit tissue response ``h(t; MTT, d) = ∫ AIF(τ - d) R(t - τ; MTT) dτ`` (HU·s), tabulated.

    Args:
        aif: fine-grid AIF sampler (a :class:`Bolus` or any callable of t).
        duration: seconds to cover (scan length plus the largest delay).
        kind, shape: residue family.
    """

    def __init__(self, aif, duration: float, kind: str = "exponential", shape: float = 3.0, n_mtt: int = 96):
        self.t = np.arange(0, duration + FINE_DT, FINE_DT)
        a = aif(self.t)
        self.log_mtt = np.linspace(np.log(MTT_RANGE[0]), np.log(MTT_RANGE[1]), n_mtt)
        n = len(self.t)
        size = 1 << int(np.ceil(np.log2(2 * n)))
        fa = np.fft.rfft(a, size)
        rows = np.stack([residue(self.t, float(np.exp(m)), kind, shape) for m in self.log_mtt])
        conv = np.fft.irfft(np.fft.rfft(rows, size, axis=1) * fa, size, axis=1)[:, :n] * FINE_DT
        self.table = conv.astype(np.float32)  # (n_mtt, n)

    def __call__(self, times: np.ndarray, mtt: np.ndarray, delay: np.ndarray) -> np.ndarray:
        """``h`` at frame ``times`` ``(T,)`` for voxels with ``mtt``, ``delay`` ``(N,)`` -> ``(N, T)``."""
        m = (np.log(np.clip(mtt, *MTT_RANGE)) - self.log_mtt[0]) / (self.log_mtt[1] - self.log_mtt[0])
        m0 = np.clip(np.floor(m).astype(np.int64), 0, len(self.log_mtt) - 2)
        wm = (m - m0).astype(np.float32)[:, None]
        pos = (times[None, :] - delay[:, None]) / FINE_DT
        valid = pos >= 0
        pos = np.clip(pos, 0, len(self.t) - 1.001)
        p0 = np.floor(pos).astype(np.int64)
        wp = (pos - p0).astype(np.float32)
        flat = self.table.ravel()
        n = self.table.shape[1]

        def at(row: np.ndarray) -> np.ndarray:
            base = row[:, None] * n
            return flat[base + p0] * (1 - wp) + flat[base + p0 + 1] * wp

        out = at(m0) * (1 - wm) + at(m0 + 1) * wm
        return np.where(valid, out, 0.0).astype(np.float32)


def tissue_enhancement(table: ResponseTable, times: np.ndarray, cbf: np.ndarray, cbv: np.ndarray,
                       delay: np.ndarray, kh: float, rho: float) -> np.ndarray:
    """Enhancement curves ``(N, T)`` in HU for voxels with ``cbf``, ``cbv``, ``delay`` ``(N,)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mtt = np.where(cbf > 0, 60.0 * cbv / np.maximum(cbf, 1e-6), MTT_RANGE[1])
    scale = (rho / kh) * cbf / 6000.0
    return (scale[:, None] * table(times, mtt, delay)).astype(np.float32)
