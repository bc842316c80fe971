"""Peak memory of training-style access to 100 ISLES-2018-sized cases (lazy + disk cache).

One ISLES-sized case (7 volumes, 256x256x8, 4D CTP of 48 frames) is written once and linked
into 100 case folders (distinct cases to strokesynth, little disk). Each measurement runs in a
fresh subprocess and reports its own peak resident memory (``VmHWM``, Linux):

- strokesynth: open the 100-case cohort lazily, build a SliceDataset with an on-disk cache of
  the 5 channels, run one shuffled epoch with augmentation;
- reference: the eager way, loading every volume of N cases into memory (N=10, to stay within
  this machine's RAM; the 100-case figure is that per case times 100).
Run: ``python benchmarks/bench_memory.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from strokesynth.io import write_cohort

from _common import isles_sized_case, report

CHILD = r"""
import json, sys, time
from pathlib import Path
import numpy as np
from strokesynth.io import open_cohort
mode, root, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
t = time.perf_counter()
cohort = open_cohort(root)
cases = cohort.cases[:n]
if mode == "lazy":
    from strokesynth.data.augment import AugmentConfig
    from strokesynth.data.datasets import SliceDataset
    ds = SliceDataset(cases, ["ct", "cbf", "cbv", "mtt", "tmax"], augment=AugmentConfig(), cache_dir=root.parent / "cache")
    ds.prepare_cache()
    for i in np.random.default_rng(0).permutation(len(ds)):
        ds[int(i)]
    items = len(ds)
else:
    held = [{k: v.array for k, v in c.modalities.items()} for c in cases]
    items = sum(a.nbytes for h in held for a in h.values())
# VmHWM is this process's own peak; ru_maxrss would carry the parent's peak over exec
peak_mb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"peak_mb": peak_mb, "items": items, "s": time.perf_counter() - t}))
"""


def child(mode: str, root: Path, n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(root), str(n)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        one = write_cohort([isles_sized_case("case_1", rng)], Path(tmp) / "one", layout="isles2018")
        root = Path(tmp) / "cohort"
        for i in range(1, 101):
            for src in (one / "case_1").rglob("*.nii"):
                dst = root / f"case_{i}" / src.parent.name / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.link(src, dst)
        base = child("eager", root, 0)["peak_mb"]
        lazy = child("lazy", root, 100)
        eager = child("eager", root, 10)
        per_case = (eager["peak_mb"] - base) / 10
    rows = [
        {"method": "open the 100-case cohort lazily (headers only)", "cases": 100, "peak_MB": base},
        {"method": "strokesynth lazy cohort + cached SliceDataset, 1 epoch", "cases": 100,
         "peak_MB": lazy["peak_mb"], "slices": lazy["items"], "seconds": lazy["s"]},
        {"method": "reference: eager load of every volume", "cases": 10, "peak_MB": eager["peak_mb"],
         "seconds": eager["s"]},
        {"method": "reference extrapolated to 100 cases", "cases": 100, "peak_MB": base + 100 * per_case},
    ]
    ratio = (lazy["peak_mb"]) / (base + 100 * per_case)
    rows[1]["ratio_vs_eager_100"] = ratio
    report("memory_100_cases", rows, "peak resident memory of each fresh process (VmHWM)")


if __name__ == "__main__":
    main()
