"""Deconvolution of tissue enhancement curves by an arterial input function (AIF).

The indicator-dilution model: ``C_t(t) = (rho / kh) * CBF * (C_a ⊛ R)(t)``, with ``R`` the
residue function (``R(0) = 1``). Discretised on the sampling grid, ``c = A (F·R)`` where
``A[i, j] = dt * a[i - j]``. Every method here inverts ``A`` through its singular value
decomposition, differing only in how the small singular values are filtered:

- ``"ssvd"``: standard truncated SVD (Østergaard et al. 1996): keep ``s > P * s_max``
  (``P = 0.2``). Sensitive to a delay between AIF and tissue.
- ``"csvd"``: block-circulant SVD (Wu et al. 2003): curves zero-padded to ``2T`` and ``A``
  made circulant, so a delayed bolus only shifts the residue (``P = 0.1``).
- ``"osvd"``: block-circulant SVD with a per-curve threshold, the least truncation whose
  residue oscillation index stays below ``oi`` (Wu et al. 2003). Found by bisection over the
  number of kept singular values, which assumes the index grows with that number.
- ``"tikhonov"``: block-circulant, Tikhonov filter ``s / (s² + (λ s_max)²)`` (``λ = 0.1``).

Tmax is the time at which the residue ``F·R(t - d)`` is largest. ``R`` is a survival function
(non-increasing from ``R(0) = 1``), so the true residue is largest at its onset ``d``, where it
jumps from 0. Every method above low-passes the residue with a zero-phase filter, which moves
the maximum of the estimate later by about half the filter's width (on the phantom's noise-free
curves +1.4 s for oSVD, +2.3 to +2.9 s for the others) while the half-height of the jump stays
at ``d``. ``tmax_rule="onset"`` (default) therefore reads Tmax where the rising edge before the
maximum crosses half of it (linear interpolation between frames); ``"peak"`` is the argmax with
parabolic sub-frame interpolation, as vendor software reports it (``docs/perfusion.md``).

The half-height of a *decaying* residue is still read early: the filter lowers the maximum of
``exp(-t / MTT)`` more than its edge, so half of it is reached before ``d``, the more so the
shorter the MTT and the heavier the truncation (oSVD under noise keeps few singular values).
``"onset_corrected"`` removes that part: for a block-circulant method the regularised estimate is
the true residue seen through a fixed, shift-invariant filter (``V diag(f) V^T``, ``f`` the kept
singular values), so the onset a reference residue ``exp(-t / MTT)`` at delay 0 gets through the
same filter is the bias of every delayed residue of that MTT. A table of that onset over the number
of kept values (oSVD) and 48 MTTs is built once per AIF, and each voxel's onset Tmax is reduced by
the entry of its truncation and its measured MTT (CBV / CBF); ``"ssvd"`` (not circulant) is left as
it is.

CBV comes from the area ratio, independent of the method. ``kh=1, rho=1`` gives the pure
tracer-kinetic model (CBV = 100 ∫C_t / ∫C_a).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.integrate import trapezoid

from strokesynth.errors import DataError

METHODS = ("ssvd", "csvd", "osvd", "tikhonov")
TMAX_RULES = ("onset", "peak", "onset_corrected")
#: MTTs (s) of the reference residues of the ``onset_corrected`` rule (log-spaced)
_BIAS_MTT_S = np.geomspace(0.5, 40.0, 48)
#: default regularisation per method: P (fraction of the largest singular value) or λ.
DEFAULT_THRESHOLD = {"ssvd": 0.2, "csvd": 0.1, "osvd": 0.005, "tikhonov": 0.1}
DEFAULT_OI = 0.1


@dataclass
class PerfusionMaps:
    """Perfusion parameters; every array has the leading shape of the tissue curves.

    Attributes:
        cbf: cerebral blood flow, ml/100 g/min.
        cbv: cerebral blood volume, ml/100 g.
        mtt: mean transit time CBV/CBF, s (0 where CBF is 0).
        tmax: time of the residue maximum, s (by the half-height of its onset or by its
            peak, see the module docstring); negative when the tissue bolus precedes the AIF
            (circulant methods only).
        kept: the regularisation actually used per curve (the fraction ``s_k / s_max`` of the
            smallest kept singular value for the SVD methods, λ for Tikhonov).
        residue: ``F·R(t)`` in 1/s, shape ``(..., L)``, when asked for.
    """

    cbf: np.ndarray
    cbv: np.ndarray
    mtt: np.ndarray
    tmax: np.ndarray
    kept: np.ndarray
    residue: np.ndarray | None = None

    def as_dict(self) -> dict[str, np.ndarray]:
        """The four maps by modality key."""
        return {"cbf": self.cbf, "cbv": self.cbv, "mtt": self.mtt, "tmax": self.tmax}


def oscillation_index(residue: np.ndarray) -> np.ndarray:
    """Wu et al.'s oscillation index of residues ``(N, L)``: mean |second difference| / max."""
    d2 = np.abs(residue[:, 2:] - 2 * residue[:, 1:-1] + residue[:, :-2]).sum(axis=1)
    peak = residue.max(axis=1)
    length = residue.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        oi = d2 / (length * peak)
    return np.where(peak > 0, oi, np.inf)


def convolution_matrix(aif: np.ndarray, dt: float, circulant: bool) -> np.ndarray:
    """The discrete convolution matrix ``A`` (``(T, T)``, or ``(2T, 2T)`` if circulant).

    The AIF is first smoothed with the (1, 4, 1)/6 kernel of Wu et al. (a Simpson-like
    quadrature of the convolution integral).
    """
    a = np.asarray(aif, dtype=np.float64)
    filt = a.copy()
    filt[1:-1] = (a[:-2] + 4 * a[1:-1] + a[2:]) / 6
    n = len(a)
    if circulant:
        length = 2 * n
        col = np.zeros(length)
        col[:n] = filt
        idx = (np.arange(length)[:, None] - np.arange(length)[None, :]) % length
        return dt * col[idx]
    idx = np.arange(n)[:, None] - np.arange(n)[None, :]
    return dt * np.where(idx >= 0, filt[np.clip(idx, 0, None)], 0.0)


def _peak_time(residue: torch.Tensor, dt: float, circulant: bool, n_frames: int) -> torch.Tensor:
    """Time (s) of each residue's maximum with parabolic sub-frame interpolation; ``(N, L)`` -> ``(N,)``."""
    length = residue.shape[1]
    k = _argmax_rows(residue)
    mid = residue.gather(1, k[:, None])[:, 0]
    left = residue.gather(1, ((k - 1) % length)[:, None])[:, 0]
    right = residue.gather(1, ((k + 1) % length)[:, None])[:, 0]
    if not circulant:
        left = torch.where(k == 0, mid, left)
        right = torch.where(k == length - 1, mid, right)
    denom = left - 2 * mid + right
    neg = denom < 0
    shift = torch.where(neg, 0.5 * (left - right) / torch.where(neg, denom, -1.0), 0.0)
    t = (k + shift.clamp(-0.5, 0.5)) * dt
    if circulant:  # peaks in the padded second half stand for negative delays
        t = torch.where(k >= n_frames, t - length * dt, t)
    return t


def _argmax_rows(residue: torch.Tensor) -> torch.Tensor:
    """Row-wise argmax ``(N, L)`` -> ``(N,)`` int64 (numpy's is several times faster than torch's on CPU)."""
    return torch.from_numpy(residue.numpy().argmax(axis=1))


def _onset_time(residue: torch.Tensor, dt: float, circulant: bool, n_frames: int) -> torch.Tensor:
    """Time (s) at which each residue's rise before its maximum crosses half the maximum.

    ``(N, L)`` -> ``(N,)``. Linear interpolation between the last frame below half and the next
    one. Without the circulant padding the residue is 0 before the first frame (causal), so the
    crossing is at least 0; with it, the search wraps into the padded half (negative delays).
    """
    length = residue.shape[1]
    k = _argmax_rows(residue)
    half = 0.5 * residue.gather(1, k[:, None])
    frame = torch.arange(length, dtype=residue.dtype)[None, :]
    kf = k.to(residue.dtype)[:, None]
    # position of each frame relative to the maximum's, walking back (circularly: frames after the
    # maximum come before it, one period earlier); the last frame below half before the maximum
    # is the one with the largest key
    key = frame - length * (frame > kf) if circulant else torch.where(frame < kf, frame, -2.0 * length)
    below = (residue < half) & (frame != kf)
    last = torch.where(below, key, -2.0 * length).amax(dim=1)
    if not circulant:  # before frame 0 the causal residue is 0: below half when the peak is positive
        last = torch.where((last < -length) & (half[:, 0] > 0) & (k < length - 1), -1.0, last)
    found = last >= -length
    lo_idx = torch.where(found, last, kf[:, 0] - 1).long()
    lo_val = residue.gather(1, (lo_idx % length)[:, None])[:, 0]
    if not circulant:
        lo_val = torch.where(lo_idx >= 0, lo_val, 0.0)
    hi_val = residue.gather(1, ((lo_idx + 1) % length)[:, None])[:, 0]
    rising = hi_val > lo_val
    frac = torch.where(rising, (half[:, 0] - lo_val) / torch.where(rising, hi_val - lo_val, 1.0), 1.0)
    t = (lo_idx + frac.clamp(0.0, 1.0)).double()
    t = torch.where(found, t, k.double())  # a flat residue: fall back to its maximum
    if circulant:  # fold into [-(padding), n_frames): the padded half stands for negative delays
        t = torch.remainder(t + (length - n_frames), length) - (length - n_frames)
    else:  # a causal residue starts at 0 at the earliest
        t = t.clamp(min=0.0)
    return (t * dt).float()


def _onset_bias(aif: np.ndarray, u: np.ndarray, s: np.ndarray, vt: np.ndarray, filters: np.ndarray, dt: float,
                n_frames: int) -> np.ndarray:
    """Onset time (s) read from reference tissue curves whose true delay is 0, deconvolved through
    each filter: ``(F, M)`` for filters ``(F, L)`` (weights of the singular values: 1 kept, 0 cut)
    and the MTTs of :data:`_BIAS_MTT_S`.

    The references go through what a measured curve goes through: the AIF, linearly interpolated
    between its samples, convolved on a grid 20 times finer with ``exp(-t / MTT)``, sampled at the
    frames, zero-padded, deconvolved with the filter and read by the onset rule."""
    sub = 20
    fine_dt = dt / sub
    t_fine = np.arange(n_frames * sub) * fine_dt
    a_fine = np.interp(t_fine, np.arange(n_frames) * dt, aif)
    length = vt.shape[1]
    refs = np.zeros((len(_BIAS_MTT_S), length))
    for j, mtt in enumerate(_BIAS_MTT_S):
        tissue = np.convolve(a_fine, np.exp(-t_fine / mtt))[: len(t_fine)] * fine_dt
        refs[j, :n_frames] = tissue[::sub]
    coef = refs @ u  # U^T c per reference (the padded half is zero)
    out = np.empty((len(filters), len(_BIAS_MTT_S)), np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(s > 0, 1.0 / s, 0.0)
    for i, f in enumerate(filters):
        residue = torch.from_numpy(((coef * (f * inv)[None, :]) @ vt).astype(np.float32))
        out[i] = _onset_time(residue, dt, True, n_frames).numpy()
    return out


def _correct_onset(tmax: np.ndarray, mtt: np.ndarray, row: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``tmax`` minus the bias of each curve's filter (``row`` into ``table``) at its MTT (s)."""
    x = np.log(np.clip(mtt, _BIAS_MTT_S[0], _BIAS_MTT_S[-1]))
    grid = np.log(_BIAS_MTT_S)
    j = np.clip(np.searchsorted(grid, x) - 1, 0, len(grid) - 2)
    w = (x - grid[j]) / (grid[j + 1] - grid[j])
    bias = table[row, j] * (1 - w) + table[row, j + 1] * w
    return (tmax - bias).astype(np.float32)


def deconvolve(
    tissue: np.ndarray,
    aif: np.ndarray,
    dt: float,
    method: str = "osvd",
    kh: float = 0.733,
    rho: float = 1.04,
    *,
    threshold: float | None = None,
    oi: float = DEFAULT_OI,
    return_residue: bool = False,
    tmax_rule: str = "onset",
    chunk: int = 4096,
) -> PerfusionMaps:
    """CBF, CBV, MTT and Tmax from tissue curves and an AIF.

    Args:
        tissue: ``(..., T)`` baseline-subtracted concentration or enhancement (HU) curves.
        aif: ``(T,)`` arterial curve in the same units, baseline-subtracted.
        dt: sampling interval, s.
        method: one of ``"ssvd"``, ``"csvd"``, ``"osvd"``, ``"tikhonov"``.
        kh: haematocrit correction (1 - Hct_large) / (1 - Hct_small); 0.733 for 0.45/0.25.
        rho: brain tissue density, g/ml.
        threshold: P for the SVD methods (oSVD: the floor of its search), λ for Tikhonov
            (both relative to the largest singular value); default per method.
        oi: oscillation-index target of ``"osvd"``.
        return_residue: also return ``F·R(t)`` per curve.
        tmax_rule: ``"onset"`` (half-height of the residue's rise), ``"peak"`` (its argmax) or
            ``"onset_corrected"`` (the onset less the bias of the method's filter at the curve's MTT;
            block-circulant methods only, see the module docstring).
        chunk: curves per matrix product (bounds memory).

    Returns:
        :class:`PerfusionMaps` with the leading shape of ``tissue``.
    """
    if method not in METHODS:
        raise DataError("deconvolve", f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    tissue = np.asarray(tissue)
    aif = np.asarray(aif, dtype=np.float64).ravel()
    n = aif.shape[0]
    if tmax_rule not in TMAX_RULES:
        raise DataError("deconvolve", f"unknown Tmax rule {tmax_rule!r} (choose from {', '.join(TMAX_RULES)})")
    if tissue.shape[-1] != n:
        raise DataError("deconvolve", f"tissue curves have {tissue.shape[-1]} frames but the AIF has {n}")
    if n < 4:
        raise DataError("deconvolve", f"need at least 4 frames, got {n}")
    if not dt > 0:
        raise DataError("deconvolve", f"time step must be positive, got {dt}")
    area_a = trapezoid(aif, dx=dt)
    if not area_a > 0:
        raise DataError("deconvolve", "the AIF has no positive area (is it baseline-subtracted enhancement?)")
    lead = tissue.shape[:-1]
    curves = np.ascontiguousarray(tissue.reshape(-1, n), dtype=np.float32)
    circulant = method != "ssvd"
    a_mat = convolution_matrix(aif, dt, circulant)
    u, s, vt = np.linalg.svd(a_mat)
    length = a_mat.shape[0]
    p = DEFAULT_THRESHOLD[method] if threshold is None else float(threshold)
    scale = kh / rho
    # the padded half of a circulant curve is zero: U^T c only needs U's first n rows
    u_t = torch.from_numpy(u[:n].astype(np.float32))
    vt_t = torch.from_numpy(vt.astype(np.float32))
    trap = np.full(n, dt)
    trap[[0, -1]] = dt / 2  # the trapezoidal rule as a weight vector
    trap_t = torch.from_numpy(trap.astype(np.float32))
    if method == "tikhonov":
        w = s / (s**2 + (p * s[0]) ** 2)
        kept_value = p
    elif method in ("ssvd", "csvd"):
        w = np.where(s > p * s[0], 1.0 / s, 0.0)
        kept_value = s[s > p * s[0]][-1] / s[0]
    else:
        w = None
    timing = _peak_time if tmax_rule == "peak" else _onset_time
    kept_n = np.empty(len(curves), np.int64) if tmax_rule == "onset_corrected" else None

    cbf = np.empty(len(curves), np.float32)
    tmax = np.empty(len(curves), np.float32)
    kept = np.empty(len(curves), np.float32)
    area = np.empty(len(curves), np.float32)
    residues = np.empty((len(curves), length), np.float32) if return_residue else None
    with torch.inference_mode():
        w_t = None if w is None else torch.from_numpy(w.astype(np.float32))
        osvd = None if w is not None else _OSVD(s, vt, oi, p)
        for lo in range(0, len(curves), chunk):
            c = torch.from_numpy(curves[lo:lo + chunk])
            coef = c @ u_t  # (N, L): U^T c per curve
            if osvd is None:
                r = (coef * w_t) @ vt_t
                kept[lo:lo + len(c)] = kept_value
            else:
                r, k = osvd(coef)
                kept[lo:lo + len(c)] = (s[k.numpy() - 1] / s[0])
                if kept_n is not None:
                    kept_n[lo:lo + len(c)] = k.numpy()
            cbf[lo:lo + len(c)] = (scale * 6000.0 * r.amax(dim=1)).numpy()
            tmax[lo:lo + len(c)] = timing(r, dt, circulant, n).numpy()
            area[lo:lo + len(c)] = (c @ trap_t).numpy()
            if residues is not None:
                residues[lo:lo + len(c)] = r.numpy()
    cbv = (scale * 100.0 * area.astype(np.float64) / area_a).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        mtt = np.where(cbf > 1e-6, 60.0 * cbv / cbf, 0.0).astype(np.float32)
    if kept_n is not None and circulant:
        if osvd is not None:  # one filter per number of kept values
            filters = (np.arange(len(s))[None, :] < np.arange(osvd.n_max + 1)[:, None]).astype(np.float64)
            row = kept_n
        else:
            filters = (w * s)[None, :]
            row = np.zeros(len(curves), np.int64)
        tmax = _correct_onset(tmax, mtt, row, _onset_bias(aif, u, s, vt, filters, dt, n))
    return PerfusionMaps(
        cbf=cbf.reshape(lead),
        cbv=cbv.reshape(lead),
        mtt=mtt.reshape(lead),
        tmax=tmax.reshape(lead),
        kept=kept.reshape(lead),
        residue=residues.reshape(*lead, length) if residues is not None else None,
    )


class _OSVD:
    """Per-curve truncation: the most singular values (none below ``floor * s_max``) whose
    residue has an oscillation index <= ``oi``.

    Found by bisection over the number kept, which assumes the index grows with it (Wu et al.
    raise the threshold until it is met): ``ceil(log2(n))`` steps, each one masked matrix
    product for every curve of the chunk (cheaper than compacting the curves still searching).
    Only the number kept is carried through the steps; the residue of the answer is formed once at
    the end from the same masked product, so it equals the one the search accepted bit for bit.
    """

    def __init__(self, s: np.ndarray, vt: np.ndarray, oi: float, floor: float) -> None:
        self.n_max = max(1, int((s > floor * s[0]).sum()))
        self.inv = torch.from_numpy((1.0 / s[:self.n_max]).astype(np.float32))
        self.vt = torch.from_numpy(np.ascontiguousarray(vt[:self.n_max], dtype=np.float32))  # never keeps more
        # row k keeps the first k values: a multiplicative mask per probe
        self.prefix = torch.tril(torch.ones(self.n_max + 1, self.n_max), diagonal=-1)
        self.limit = oi * len(s)

    def _residue(self, b: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Residues ``(N, L)`` keeping the first ``k`` (``(N,)``) scaled coefficients of ``b``.

        Values past the largest ``k`` of the chunk are zero for every curve, so the product only
        runs over the first ``max(k)`` of them (the same sums, fewer multiplications by zero)."""
        width = int(k.max())
        return (b[:, :width] * self.prefix[:, :width].index_select(0, k)) @ self.vt[:width]

    def __call__(self, coef: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Residues ``(N, L)`` and the number of kept singular values per curve ``(N,)``."""
        b = coef[:, :self.n_max] * self.inv
        lo = torch.ones(len(coef), dtype=torch.int64)  # one value is always acceptable (no oscillation)
        hi = torch.full((len(coef),), self.n_max, dtype=torch.int64)
        steps = int(np.ceil(np.log2(self.n_max)))
        d1 = d2 = None
        for _ in range(steps):
            mid = (lo + hi + 1) // 2  # = lo once converged: re-tested, changes nothing
            r = self._residue(b, mid)
            # second difference (as torch.diff(r, n=2)) into reused buffers: the search is memory-bound
            d1 = torch.sub(r[:, 1:], r[:, :-1], out=d1)
            d2 = torch.sub(d1[:, 1:], d1[:, :-1], out=d2)
            peak = r.amax(dim=1)
            ok = (peak > 0) & (torch.linalg.vector_norm(d2, 1, dim=1) <= self.limit * peak)
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, torch.maximum(mid - 1, lo))
        return self._residue(b, lo), lo
