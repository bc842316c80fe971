"""Cost of verifying a ``.nii.gz`` whole (gzip CRC-32 and length) when its voxels are read.

A real-size 4D CTP (512 x 512 x 16 x 40 int16, ~335 MB uncompressed) is read three ways:
strokesynth's ``NiftiSource.read`` (the CRC and length checked in the pass that fills the
array), the reference ``np.asanyarray(nib.load(f).dataobj)`` (nibabel alone: reads only the
bytes it needs, checks nothing), and the separate streaming check ``NiftiSource.verify`` that
``read_slab`` runs once (4 MiB chunks). Time is the best of 3; peak memory is what tracemalloc
sees allocated by the call (NumPy's buffers included). Run: ``python benchmarks/bench_gzip_verify.py``.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np

from strokesynth.io.nifti import read_volume

from _common import best_of, report

SHAPE = (512, 512, 16, 40)


def _peak_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main() -> None:
    rng = np.random.default_rng(0)
    data = (rng.normal(40, 8, SHAPE)).astype(np.int16)  # HU-like noise: compresses like a real CTP (about 2:1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ctp.nii.gz"
        t0 = time.perf_counter()
        nib.save(nib.Nifti1Image(data, np.eye(4), dtype=np.int16), str(path))
        write_s = time.perf_counter() - t0
        del data

        def ours():
            read_volume(path, ndim=4).array  # noqa: B018 - a fresh source: the check runs each time

        def reference():
            np.asanyarray(nib.load(str(path)).dataobj)

        def stream_check():
            vol = read_volume(path, ndim=4)
            vol._source.verify()  # noqa: SLF001 - the pass read_slab runs once

        rows = []
        t_ref = best_of(reference)
        m_ref = _peak_mb(reference)
        for name, fn in (("strokesynth read (CRC in the same pass)", ours),
                         ("streaming verify only (read_slab's first call)", stream_check)):
            t, m = best_of(fn), _peak_mb(fn)
            rows.append({"method": name, "seconds": t, "peak_MB": round(m, 1), "time_ratio_vs_nibabel": t / t_ref,
                         "memory_ratio_vs_nibabel": m / m_ref})
        rows.append({"method": "reference: nibabel dataobj (no check)", "seconds": t_ref, "peak_MB": round(m_ref, 1),
                     "time_ratio_vs_nibabel": 1.0, "memory_ratio_vs_nibabel": 1.0})
    report("gzip_verify", rows, f"4D CTP {SHAPE} int16, {path.name} {write_s:.0f} s to write; strokesynth's read "
                                "also converts to float32 (the dtype policy), which the reference does not")


if __name__ == "__main__":
    main()
