"""Helpers of the benchmarks: timing, an ISLES-2018-sized cohort, table printing, JSON output."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from strokesynth.data.case import Case
from strokesynth.data.volume import Volume

RESULTS = Path(__file__).resolve().parent / "results"


def isles_sized_case(case_id: str, rng: np.random.Generator, shape=(256, 256, 8), frames: int = 48) -> Case:
    """7 volumes as in ISLES 2018: CT, 4D CTP (int16 HU), CBF, CBV, MTT, Tmax and the core mask."""
    aff = np.diag([0.9, 0.9, 5.0, 1.0]).astype(np.float32).astype(np.float64)
    brain = np.zeros(shape, bool)
    brain[32:-32, 32:-32] = True
    ct = np.where(brain, rng.normal(35, 5, shape), -1000).round()
    ctp = ct[..., None] + np.where(brain[..., None], rng.normal(10, 5, shape + (frames,)), 0).round()
    maps = {k: np.where(brain, rng.gamma(2.0, s, shape), 0.0) for k, s in
            [("cbf", 25.0), ("cbv", 2.0), ("mtt", 2.0), ("tmax", 1.5)]}
    lesion = np.zeros(shape, np.uint8)
    lesion[100:140, 60:110, 2:6] = 1
    vols = {"ct": Volume(ct, aff, disk_dtype=np.int16), "ctp": Volume(ctp, aff, dt=1.0, disk_dtype=np.int16),
            "lesion": Volume(lesion, aff, kind="label")}
    vols.update({k: Volume(v, aff) for k, v in maps.items()})
    return Case(case_id, case_id, vols)


def vectorised_ssvd(curves: np.ndarray, aif: np.ndarray, dt: float, threshold: float = 0.2) -> np.ndarray:
    """Residues ``(N, T)`` of ``curves`` by truncated-SVD deconvolution, one pseudo-inverse and one
    matrix product: the floor of any SVD deconvolution, the reference the perfusion benchmarks
    compare with."""
    n = len(aif)
    a = np.zeros((n, n))
    for i in range(n):
        a[i, : i + 1] = aif[i::-1]
    a *= dt
    u, s, vt = np.linalg.svd(a)
    inv = np.where(s > threshold * s.max(), 1.0 / s, 0.0)
    pinv = (vt.T * inv) @ u.T
    return curves @ pinv.T


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Minimum wall time of ``repeats`` calls, seconds."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def mean_time(fn: Callable[[], object], repeats: int) -> float:
    """Mean wall time of ``repeats`` calls after one warm-up call, seconds."""
    fn()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_name(),
    }


def report(name: str, rows: list[dict], note: str = "") -> Path:
    """Print ``rows`` as a table and save them with machine facts to results/<name>.json."""
    cols: list[str] = []
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    fmt = {c: max(len(c), *(len(_fmt(r.get(c, ""))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(fmt[c]) for c in cols))
    print("  ".join("-" * fmt[c] for c in cols))
    for r in rows:
        print("  ".join(_fmt(r.get(c, "")).ljust(fmt[c]) for c in cols))
    if note:
        print(note)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), "rows": rows, "note": note}, indent=2))
    print(f"saved {path}")
    return path


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
