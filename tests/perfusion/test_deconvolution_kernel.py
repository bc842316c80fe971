"""The vectorised (torch, chunked) deconvolution against a per-curve numpy loop of the same maths."""

from __future__ import annotations

import numpy as np
import pytest

from strokesynth.perfusion import METHODS, deconvolve, oscillation_index
from strokesynth.perfusion.deconvolution import DEFAULT_OI, DEFAULT_THRESHOLD, convolution_matrix
from strokesynth.phantom.validation import phantom_curves


def _onset(r: np.ndarray, dt: float, circulant: bool, n: int) -> float:
    """Half-height crossing of the rise before the maximum, walking back one frame at a time."""
    length, k = len(r), int(r.argmax())
    half = r[k] / 2
    for back in range(1, length):
        j = k - back
        lo = r[j % length] if (circulant or j >= 0) else 0.0
        if lo < half:
            hi = r[(j + 1) % length]
            t = j + (np.clip((half - lo) / (hi - lo), 0, 1) if hi > lo else 1.0)
            break
    else:
        t = float(k)
    if circulant:
        return float((np.mod(t + length - n, length) - (length - n)) * dt)
    return float(max(t, 0.0) * dt)


@pytest.fixture(scope="module")
def curves():
    base = phantom_curves(delays=np.arange(0.0, 6.01, 1.5))
    rng = np.random.default_rng(4)
    noisy = np.repeat(base.curves, 3, axis=0) + rng.normal(0, 2.0, (3 * len(base.curves), base.curves.shape[1]))
    return base, noisy.astype(np.float32)


@pytest.mark.parametrize("method", METHODS)
def test_vectorised_equals_per_curve_loop(curves, method):
    base, c = curves
    n, dt = c.shape[1], base.dt
    circ = method != "ssvd"
    u, s, vt = np.linalg.svd(convolution_matrix(base.aif, dt, circ))
    p = DEFAULT_THRESHOLD[method]
    got = deconvolve(c, base.aif, dt, method, kh=1.0, rho=1.0, return_residue=True, chunk=97)  # odd chunks
    for i in range(0, len(c), 7):
        x = np.concatenate([c[i], np.zeros(n)]) if circ else c[i].astype(np.float64)
        coef = u.T @ x
        if method == "tikhonov":
            r = vt.T @ (coef * s / (s**2 + (p * s[0]) ** 2))
        elif method == "osvd":
            # kept values = the k whose s_k / s_max is reported (pairs of equal values: the one
            # whose residue it returned)
            ks = np.flatnonzero(np.isclose(s / s[0], got.kept[i], rtol=1e-5)) + 1
            cands = [vt.T @ np.where(np.arange(len(s)) < k, coef / s, 0.0) for k in ks]
            best = int(np.argmin([np.abs(r - got.residue[i]).max() for r in cands]))
            k, r = int(ks[best]), cands[best]
            # the search's answer: meets the target, and one more value would not (or none is left)
            assert oscillation_index(r[None])[0] <= DEFAULT_OI + 1e-4
            n_max = int((s > p * s[0]).sum())
            if k < n_max:
                r1 = vt.T @ np.where(np.arange(len(s)) < k + 1, coef / s, 0.0)
                assert oscillation_index(r1[None])[0] > DEFAULT_OI - 1e-4
        else:
            r = vt.T @ np.where(s > p * s[0], coef / s, 0.0)
        np.testing.assert_allclose(got.residue[i], r, rtol=1e-4, atol=1e-4 * np.abs(r).max())
        assert got.cbf[i] == pytest.approx(6000 * r.max(), rel=1e-4)
        assert got.tmax[i] == pytest.approx(_onset(r, dt, circ, n), abs=1e-3)


def test_osvd_search_returns_the_residue_it_accepted_bit_for_bit(curves):
    """The search carries only the number kept and forms the residue once at the end; it must equal
    a search that keeps the accepted residue at every step (the form before the speed-up)."""
    import torch

    from strokesynth.perfusion.deconvolution import _OSVD

    base, c = curves
    u, s, vt = np.linalg.svd(convolution_matrix(base.aif, base.dt, True))
    search = _OSVD(s, vt, DEFAULT_OI, DEFAULT_THRESHOLD["osvd"])
    coef = torch.from_numpy(c) @ torch.from_numpy(u[: c.shape[1]].astype(np.float32))
    b = coef[:, : search.n_max] * search.inv
    lo = torch.ones(len(c), dtype=torch.int64)
    hi = torch.full((len(c),), search.n_max, dtype=torch.int64)
    best = b[:, :1] * search.vt[0]
    for _ in range(int(np.ceil(np.log2(search.n_max)))):
        mid = (lo + hi + 1) // 2
        r = (b * search.prefix.index_select(0, mid)) @ search.vt
        peak = r.amax(dim=1)
        ok = (peak > 0) & (torch.diff(r, n=2, dim=1).abs().sum(dim=1) <= search.limit * peak)
        lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, torch.maximum(mid - 1, lo))
        best = torch.where(ok[:, None], r, best)
    got, kept = search(coef)
    assert torch.equal(kept, lo)
    assert torch.equal(got, best)
    assert 1 < int(kept.min()) < int(kept.max()) < search.n_max  # the search had work to do


@pytest.mark.parametrize("circulant", [True, False])
def test_onset_walk_back_equals_the_per_curve_loop_on_hard_rows(circulant):
    """The onset search walks back only over rows still searching; on rows where the crossing is
    far, at the wrap, missing (flat, all-zero, negative) or at frame 0, it equals the loop."""
    import torch

    from strokesynth.perfusion.deconvolution import _onset_time

    rng = np.random.default_rng(11)
    n, dt = 24, 1.25
    length = 2 * n if circulant else n
    rows = [rng.normal(0, 1, length) for _ in range(300)]
    rows += [np.zeros(length), np.full(length, 3.0), -np.abs(rng.normal(0, 1, length)), np.arange(length, 0.0, -1),
             np.arange(1.0, length + 1), np.roll(np.hanning(length), length // 2 - 2), np.roll(np.hanning(length), -3)]
    r = np.array(rows, np.float32)
    got = _onset_time(torch.from_numpy(r), dt, circulant, n).numpy()
    want = np.array([_onset(x.astype(np.float64), dt, circulant, n) for x in r])
    np.testing.assert_allclose(got, want, atol=1e-4)
