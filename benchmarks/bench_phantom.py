"""Phantom speed: seconds per 256x256x8x48 scan and per 128x128x32 whole-brain MR study, the cost of
motion correction, and the forward model against a naive loop.

The reference for the forward model, measured in the same run, is a per-voxel loop that
convolves the fine-grid AIF with the voxel's residue (``np.convolve`` at 0.05 s) and samples
the frames, i.e. the same maths without the shared table.
Run: ``python benchmarks/bench_phantom.py``.
"""

from __future__ import annotations

import time

import numpy as np

from strokesynth.perfusion import PerfusionConfig, analyze_ctp
from strokesynth.phantom import PhantomConfig, generate_mr_studies, subject_scans
from strokesynth.phantom.atlas import mni_atlas
from strokesynth.phantom.kinetics import FINE_DT, Bolus, ResponseTable, residue, tissue_enhancement

from _common import report


def naive_forward(bolus: Bolus, times: np.ndarray, cbf, cbv, delay, kh=0.733, rho=1.04) -> np.ndarray:
    fine = np.arange(0, times[-1] + 20, FINE_DT)
    out = np.empty((len(cbf), len(times)), np.float32)
    for i in range(len(cbf)):
        mtt = 60 * cbv[i] / cbf[i]
        h = np.convolve(bolus(fine - delay[i]), residue(fine, mtt))[: len(fine)] * FINE_DT
        out[i] = (rho / kh) * cbf[i] / 6000 * np.interp(times, fine, h)
    return out


def main() -> None:
    rows = []
    t = time.perf_counter()
    mni_atlas()
    rows.append({"step": "load + prepare MNI atlas (once per process)", "seconds": round(time.perf_counter() - t, 2)})

    cfg = PhantomConfig(subjects=3)
    cfg.grid.slices = [8]
    cfg.grid.two_slab_prob = 0.0
    per_scan, analysis = [], []
    for i in range(3):
        t = time.perf_counter()
        scan = subject_scans(cfg, i, healthy=False, first_case=i + 1)[0]
        per_scan.append(time.perf_counter() - t)
        t = time.perf_counter()
        analyze_ctp(scan.case["ctp"])
        analysis.append(time.perf_counter() - t)
    rows.append({"step": "one scan 256x256x8x48 (all outputs), median of 3", "seconds": round(float(np.median(per_scan)), 2)})
    rows.append({"step": "  of which perfusion maps (oSVD), median of 3", "seconds": round(float(np.median(analysis)), 2)})

    # whole-brain MR study (128x128x32), and a moving scan with and without motion correction
    mcfg = PhantomConfig(subjects=2, healthy=1, seed=0)
    t = time.perf_counter()
    generate_mr_studies(mcfg)
    rows.append({"step": "one whole-brain MR study 128x128x32 (all outputs), mean of 3",
                 "seconds": round((time.perf_counter() - t) / 3, 2)})
    moving_cfg = PhantomConfig(subjects=1, seed=4)
    moving_cfg.grid.slices = [8]
    moving_cfg.grid.two_slab_prob = 0.0
    moving_cfg.motion.prob = 1.0
    moving = subject_scans(moving_cfg, 0, healthy=False, first_case=1)[0]
    t = time.perf_counter()
    analyze_ctp(moving.case["ctp"])
    plain = time.perf_counter() - t
    t = time.perf_counter()
    analyze_ctp(moving.case["ctp"], PerfusionConfig(motion_correction=True))
    corrected = time.perf_counter() - t
    rows.append({"step": "perfusion maps of a moving 256x256x8x48 scan, no correction", "seconds": round(plain, 2)})
    rows.append({"step": "  with motion correction (47 frame registrations)", "seconds": round(corrected, 2),
                 "ratio": round(corrected / plain, 1)})

    rng = np.random.default_rng(0)
    n = 200_000
    cbf, cbv, delay = rng.uniform(5, 60, n), rng.uniform(1, 5, n), rng.uniform(0, 8, n)
    bolus = Bolus(10, 3, 1.5, 300, 0.12, 9)
    times = np.arange(48) * 1.25
    t = time.perf_counter()
    table = ResponseTable(bolus, times[-1] + 13)
    fast = tissue_enhancement(table, times, cbf, cbv, delay, 0.733, 1.04)
    fast_rate = n / (time.perf_counter() - t)
    t = time.perf_counter()
    ref = naive_forward(bolus, times, cbf[:300], cbv[:300], delay[:300])
    slow_rate = 300 / (time.perf_counter() - t)
    err = float(np.max(np.abs(fast[:300] - ref)) / np.max(np.abs(ref)))
    rows.append({"step": "forward model curves/s (table)", "rate": round(fast_rate)})
    rows.append({"step": "forward model curves/s (naive loop)", "rate": round(slow_rate),
                 "ratio": round(fast_rate / slow_rate, 1), "max_rel_diff": round(err, 4)})
    report("phantom", rows)


if __name__ == "__main__":
    main()
