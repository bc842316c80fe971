"""Perfusion analysis at the size of real studies: wall time and peak memory of ``analyze_ctp`` on an
ISLES'24-sized CTP (512 x 512 x 80 voxels at 0.45 x 0.45 x 2 mm, 40 frames at 1.5 s, int16 in a
.nii.gz: 1.68 GB of voxels) and on an ISLES-2018-sized one (256 x 256 x 8, 48 frames).

The reference, measured in the same run on the same files, is the same analysis on the scan loaded
whole as float32 first (``Volume.load()``: what every analysis held before it streamed, and what a
user who reads the file with ``get_fdata`` holds before anything is computed). Each measurement runs
in a fresh subprocess and reports its own peak resident memory (``VmHWM``).

The 512 px scan is a phantom scan simulated at 256 x 256 x 40 (0.9 x 0.9 x 4 mm: the simulation at
512 px takes 4.5 min and 20 GB) and interpolated to the 512 grid per frame, with fresh 5 HU noise
at 512: its brain holds ~3.9 M voxels, as a real 512 px study's does.
Run: ``python benchmarks/bench_perfusion_size.py [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from _common import report

CHILD = r"""
import json, resource, sys, time, torch
torch.set_num_threads(2)
from strokesynth.io.nifti import read_volume
from strokesynth.perfusion import analyze_ctp
mode, path = sys.argv[1], sys.argv[2]
t = time.perf_counter()
ctp = read_volume(path, ndim=4)
if mode == "whole float32 (reference)":
    ctp = ctp.load()
result = analyze_ctp(ctp)
seconds = time.perf_counter() - t
peak = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM"):
        peak = int(line.split()[1]) * 1024
brain = int((result.mask.array > 0).sum())
print(json.dumps({"seconds": seconds, "peak_bytes": peak, "brain_voxels": brain,
                  "aif_arrival_s": result.info["aif"]["arrival_s"]}))
"""


def _write(array: np.ndarray, spacing: tuple[float, float, float], dt: float, path: Path) -> None:
    image = nib.Nifti1Image(np.asarray(array), np.diag([*spacing, 1.0]))
    image.header.set_data_dtype(np.int16)
    image.header.set_xyzt_units("mm", "sec")
    image.header.set_zooms((*spacing, dt))
    image.header.set_slope_inter(1.0, 0.0)
    nib.save(image, str(path))


def isles24_sized(path: Path, seed: int = 3) -> tuple[tuple[int, ...], float]:
    """Write the 512 x 512 x 80 x 40 int16 CTP described above; returns (shape, seconds)."""
    from strokesynth.phantom import PhantomConfig
    from strokesynth.phantom.cohort import subject_scans

    t = time.perf_counter()
    cfg = PhantomConfig(subjects=1, seed=seed)
    cfg.grid.size, cfg.grid.spacing_mm, cfg.grid.slices, cfg.grid.slice_mm = 256, 0.9, [40], 4.0
    cfg.grid.sub_slices, cfg.grid.two_slab_prob = 1, 0.0
    cfg.bolus.frames, cfg.bolus.dt = 40, 1.5
    ctp = subject_scans(cfg, 0, False, 1)[0].case["ctp"]
    low = ctp.array
    rng = np.random.default_rng(seed)
    out = np.empty((512, 512, 80, low.shape[-1]), np.int16, order="F")
    with torch.inference_mode():
        for k in range(low.shape[-1]):
            frame = torch.from_numpy(np.ascontiguousarray(low[..., k]))[None, None]
            up = torch.nn.functional.interpolate(frame, size=(512, 512, 80), mode="trilinear", align_corners=False)
            noisy = up[0, 0].numpy() + rng.normal(0.0, 5.0, (512, 512, 80)).astype(np.float32)
            out[..., k] = np.clip(np.round(noisy), -1024, 3071).astype(np.int16)
    _write(out, (0.45, 0.45, 2.0), 1.5, path)
    return out.shape, time.perf_counter() - t


def isles18_sized(path: Path, seed: int = 3) -> tuple[int, ...]:
    from strokesynth.phantom import PhantomConfig
    from strokesynth.phantom.cohort import subject_scans

    cfg = PhantomConfig(subjects=1, seed=seed)
    cfg.grid.slices, cfg.grid.two_slab_prob = [8], 0.0
    ctp = subject_scans(cfg, 0, False, 1)[0].case["ctp"]
    _write(np.round(ctp.array).astype(np.int16), ctp.spacing, float(ctp.dt), path)
    return ctp.shape


def measure(mode: str, path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(path)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, default=None, help="Folder to write the scans to (and keep them).")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_perfusion_size_"))
    folder.mkdir(parents=True, exist_ok=True)
    scans = []
    small = folder / "ctp_256x256x8x48.nii.gz"
    if not small.exists():
        isles18_sized(small)
    scans.append(("ISLES 2018 size 256x256x8x48", small))
    big = folder / "ctp_512x512x80x40.nii.gz"
    if not big.exists():
        shape, seconds = isles24_sized(big)
        print(f"wrote {big} {shape} in {seconds:.0f} s")
    scans.append(("ISLES'24 size 512x512x80x40", big))
    rows = []
    for label, path in scans:
        shape = nib.load(str(path)).shape
        voxel_bytes = int(np.prod(shape)) * 2
        ref = measure("whole float32 (reference)", path)
        new = measure("streamed from int16 (strokesynth)", path)
        for mode, m in (("whole float32 (reference)", ref), ("streamed from int16 (strokesynth)", new)):
            rows.append({"scan": label, "analysis": mode, "seconds": round(m["seconds"], 1),
                         "peak_GB": round(m["peak_bytes"] / 1e9, 2),
                         "peak / int16 voxels": round(m["peak_bytes"] / voxel_bytes, 2),
                         "file_GB": round(path.stat().st_size / 1e9, 2),
                         "brain_voxels": m["brain_voxels"], "aif_arrival_s": m["aif_arrival_s"]})
        rows.append({"scan": label, "analysis": "ratio streamed / reference",
                     "seconds": round(new["seconds"] / ref["seconds"], 2),
                     "peak_GB": round(new["peak_bytes"] / ref["peak_bytes"], 2)})
    report("perfusion_size", rows, note="goal for 512x512x80x40: peak < 6 GB and <= 4x the int16 voxels, <= 60 s on 2 cores; "
                                        "reading the .nii.gz (decompression) is inside the seconds")


if __name__ == "__main__":
    main()
