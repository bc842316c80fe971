"""Deconvolution speed per method, against the floor of any SVD deconvolution.

Two workloads: (1) 524,288 phantom curves of 48 frames (every voxel of a 256x256x8x48 scan, the
worst case) and (2) the brain curves of one phantom scan of that size with the AIF the analysis
chose (what ``predict`` deconvolves). References measured in the same run: a vectorised sSVD of
the same curves (one truncated pseudo-inverse, one matrix product; no Tmax, no CBV), and a naive
per-voxel Python loop of the same maths (SVD once, then per voxel the filtered pseudo-inverse; for
oSVD, Wu et al.'s threshold raised until the oscillation index is met), timed on 300 curves and
scaled to curves/s.
Run: ``python benchmarks/bench_perfusion.py [--threads 2]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from strokesynth.perfusion import METHODS, analyze_ctp, deconvolve, oscillation_index
from strokesynth.perfusion.deconvolution import DEFAULT_OI, DEFAULT_THRESHOLD, convolution_matrix
from strokesynth.phantom import PhantomConfig
from strokesynth.phantom.cohort import subject_scans
from strokesynth.phantom.validation import phantom_curves

from _common import best_of, machine, report, vectorised_ssvd

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


def scan_curves() -> tuple[np.ndarray, np.ndarray, float]:
    """Brain curves ``(N, 48)`` (baseline-subtracted, smoothed as the analysis does), AIF and dt of
    one 256x256x8x48 phantom scan."""
    cfg = PhantomConfig(subjects=1, seed=3)
    cfg.grid.slices = [8]
    cfg.grid.two_slab_prob = 0.0
    ctp = subject_scans(cfg, 0, False, 1)[0].case["ctp"]
    result = analyze_ctp(ctp)
    data = ctp.array.astype(np.float32)
    brain = result.mask.array > 0
    base = data[..., : result.info["baseline_frames"]].mean(-1)
    return (data - base[..., None])[brain], result.aif.curve, float(ctp.dt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = phantom_curves()
    rng = np.random.default_rng(0)
    reps = int(np.ceil(N_VOXELS / len(base.curves)))
    curves = np.repeat(base.curves, reps, axis=0)[:N_VOXELS]
    curves = curves + rng.normal(0, 1.0, curves.shape).astype(np.float32)
    curves = curves[rng.permutation(N_VOXELS)]  # no runs of identical curves
    brain, aif, dt = scan_curves()
    rows = []
    for label, c, a, step in (("every voxel", curves, base.aif, base.dt), ("phantom scan, brain", brain, aif, dt)):
        ref = best_of(lambda c=c, a=a, step=step: vectorised_ssvd(c, a, step), 3)
        for method in METHODS:
            fast = best_of(lambda c=c, a=a, step=step, m=method: deconvolve(c, a, step, m), 2)
            row = {"curves": f"{label} ({len(c)})", "method": method, "scan_s": round(fast, 3),
                   "ssvd_floor_s": round(ref, 3), "x_floor": round(fast / ref, 1)}
            if label == "every voxel":
                sub = c[:300]
                t = time.perf_counter()
                slow = naive(sub, a, step, method)
                slow_rate = len(sub) / (time.perf_counter() - t)
                got = deconvolve(sub, a, step, method).cbf
                diff = np.abs(slow * 0.733 / 1.04 * 6000 - got) / np.maximum(got, 1)
                row.update({"x_naive_loop": round(len(c) / fast / slow_rate, 1),
                            "median_rel_diff_vs_naive": round(float(np.median(diff)), 4)})
            rows.append(row)
    report("perfusion", rows, note=f"48 frames; scan_s: deconvolve() (CBF, CBV, MTT, Tmax), best of 2; ssvd_floor_s: "
                                   f"one pseudo-inverse and one product, best of 3; {args.threads} threads; "
                                   f"cpu: {machine()['cpu']}")


if __name__ == "__main__":
    main()
