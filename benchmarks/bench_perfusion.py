"""Deconvolution speed on a 256x256x8x48 scan (524,288 voxel curves) per method.

Reference, measured in the same run: a naive per-voxel Python loop doing the same maths
(SVD computed once, then per voxel the filtered pseudo-inverse; for oSVD, Wu et al.'s
iterative threshold search per voxel), timed on a subset and scaled to curves/s.
Run: ``python benchmarks/bench_perfusion.py``.
"""

from __future__ import annotations

import time

import numpy as np

from strokesynth.perfusion import METHODS, deconvolve, oscillation_index
from strokesynth.perfusion.deconvolution import DEFAULT_OI, DEFAULT_THRESHOLD, convolution_matrix
from strokesynth.phantom.validation import phantom_curves

from _common import report

N_VOXELS = 256 * 256 * 8


def naive(curves: np.ndarray, aif: np.ndarray, dt: float, method: str) -> np.ndarray:
    """Per-voxel loop; returns CBF-proportional peaks (only timed, and checked against the fast path)."""
    circ = method != "ssvd"
    a = convolution_matrix(aif, dt, circ)
    u, s, vt = np.linalg.svd(a)
    p = DEFAULT_THRESHOLD[method]
    out = np.empty(len(curves))
    for i, c in enumerate(curves):
        c = np.concatenate([c, np.zeros_like(c)]) if circ else c
        coef = u.T @ c
        if method == "tikhonov":
            r = vt.T @ (coef * s / (s**2 + (p * s[0]) ** 2))
        elif method == "osvd":
            for k in range(int((s > p * s[0]).sum()), 0, -1):  # Wu: raise the threshold until OI is met
                r = vt.T @ np.where(np.arange(len(s)) < k, coef / s, 0.0)
                if oscillation_index(r[None])[0] <= DEFAULT_OI:
                    break
        else:
            r = vt.T @ np.where(s > p * s[0], coef / s, 0.0)
        out[i] = r.max()
    return out


def main() -> None:
    base = phantom_curves()
    rng = np.random.default_rng(0)
    reps = int(np.ceil(N_VOXELS / len(base.curves)))
    curves = np.repeat(base.curves, reps, axis=0)[:N_VOXELS]
    curves = curves + rng.normal(0, 1.0, curves.shape).astype(np.float32)
    rows = []
    for method in METHODS:
        t = time.perf_counter()
        maps = deconvolve(curves, base.aif, base.dt, method)
        fast = time.perf_counter() - t
        sub = curves[:300]
        t = time.perf_counter()
        ref = naive(sub, base.aif, base.dt, method)
        slow_rate = len(sub) / (time.perf_counter() - t)
        diff = np.abs(ref * 0.733 / 1.04 * 6000 - maps.cbf[:300]) / np.maximum(maps.cbf[:300], 1)
        rows.append({
            "method": method, "scan_s": round(fast, 2), "curves_per_s": round(N_VOXELS / fast),
            "naive_curves_per_s": round(slow_rate), "speedup": round(N_VOXELS / fast / slow_rate, 1),
            "median_rel_diff_vs_naive": round(float(np.median(diff)), 4),
            "share_diff_over_5pct": round(float(np.mean(diff > 0.05)), 3),
        })
    report("perfusion", rows, note=f"{N_VOXELS} curves of 48 frames (a 256x256x8x48 scan); naive loop timed on 300")


if __name__ == "__main__":
    main()
