"""Load one ISLES-2018-sized case (7 volumes, 256x256x8, 4D CTP with 48 frames).

strokesynth (layout reader + every volume's voxels through the dtype and NaN checks) against a
plain nibabel loop over the same files (``nib.load(f).get_fdata(dtype=float32)``) as the
reference, for uncompressed ``.nii`` (the ISLES 2018 files) and ``.nii.gz`` (plain layout).
Run: ``python benchmarks/bench_io.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from strokesynth.io import open_cohort, write_cohort

from _common import best_of, isles_sized_case, report


def main() -> None:
    rng = np.random.default_rng(0)
    case = isles_sized_case("case_1", rng)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("isles2018", "plain"):
            root = write_cohort([case], Path(tmp) / layout, layout=layout)
            files = sorted(p for p in root.rglob("*.nii*"))
            size_mb = sum(p.stat().st_size for p in files) / 1e6

            def ours(root=root):
                for c in open_cohort(root):
                    for v in c.modalities.values():
                        v.array  # noqa: B018

            def reference(files=files):
                for f in files:
                    nib.load(str(f)).get_fdata(dtype=np.float32)

            def header_only(root=root):
                open_cohort(root)

            t_ours, t_ref, t_head = best_of(ours), best_of(reference), best_of(header_only)
            rows.append({
                "layout": layout, "files": len(files), "MB_on_disk": round(size_mb, 1),
                "strokesynth_s": t_ours, "nibabel_loop_s": t_ref, "ratio_vs_nibabel": t_ours / t_ref,
                "open_headers_only_s": t_head,
            })
    report("io_load_case", rows, "ratio < 1 is faster than the reference; the 4D CTP dominates.")


if __name__ == "__main__":
    main()
