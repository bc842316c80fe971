"""Slice-dataset throughput with augmentation on this machine's cores (target: >= 200 slices/s).

Six ISLES-2018-sized cases (256x256x8, 5 channels: CT, CBF, CBV, MTT, Tmax) in the ISLES 2018
layout. strokesynth's SliceDataset (normalise, pad to 256x256, one composed rotation /
translation / scaling / flip resampling, images and label) is timed from memory, from its
on-disk cache, and through a DataLoader with 2 workers. The reference is the plain per-slice
loop a user would otherwise write: for each slice read the case's files with nibabel,
normalise, take the slice and augment it with MONAI's RandAffine + RandFlip.
Run: ``python benchmarks/bench_slices.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.transforms import RandAffine, RandFlip
from torch.utils.data import DataLoader

from strokesynth.data.augment import AugmentConfig
from strokesynth.data.datasets import SliceDataset
from strokesynth.data.normalize import Normalization
from strokesynth.io import open_cohort, write_cohort

from _common import isles_sized_case, report

MODS = ["ct", "cbf", "cbv", "mtt", "tmax"]
MOD_DIR = {"ct": "CT", "cbf": "CT_CBF", "cbv": "CT_CBV", "mtt": "CT_MTT", "tmax": "CT_Tmax", "lesion": "OT"}


def rate(fn, n_items: int) -> float:
    t = time.perf_counter()
    fn()
    return n_items / (time.perf_counter() - t)


def main() -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    cases = [isles_sized_case(f"case_{i + 1}", rng) for i in range(6)]
    aug = AugmentConfig(p=1.0, flip_axes=(0,))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = write_cohort(cases, Path(tmp) / "isles", layout="isles2018")
        cohort = open_cohort(root)
        epochs = 3

        mem = SliceDataset(cohort.cases, MODS, augment=aug)
        n = len(mem)

        def run_epochs(ds):
            for e in range(epochs):
                ds.set_epoch(e)
                for i in range(len(ds)):
                    ds[i]

        mem[0]  # noqa: B018 (warm-up)
        rows.append({"method": "strokesynth SliceDataset, in-memory LRU", "workers": 0,
                     "slices_per_s": rate(lambda: run_epochs(mem), n * epochs)})
        cached = SliceDataset(cohort.cases, MODS, augment=aug, cache_dir=Path(tmp) / "cache")
        t = time.perf_counter()
        cached.prepare_cache()
        prep = time.perf_counter() - t
        rows.append({"method": "strokesynth SliceDataset, disk cache (mmap)", "workers": 0,
                     "slices_per_s": rate(lambda: run_epochs(cached), n * epochs),
                     "one_time_cache_s": prep})

        loader = DataLoader(cached, batch_size=16, shuffle=True, num_workers=2, persistent_workers=True,
                            generator=torch.Generator().manual_seed(0))
        for _ in loader:  # start the workers once, as a training run does
            pass

        def loader_epochs():
            for e in range(epochs):
                cached.set_epoch(e)
                for _ in loader:
                    pass

        rows.append({"method": "strokesynth SliceDataset + DataLoader", "workers": 2,
                     "slices_per_s": rate(loader_epochs, n * epochs)})

        norm = Normalization()
        affine = RandAffine(prob=1.0, rotate_range=(np.deg2rad(10),), translate_range=(25.6, 25.6),
                            scale_range=(0.1, 0.1), padding_mode="zeros")
        flip = RandFlip(prob=0.5, spatial_axis=0)
        affine.set_random_state(0)
        flip.set_random_state(0)
        index = [(c, z) for c in cohort.cases for z in range(c.spatial_shape[2])]

        def naive(limit: int):
            for case, z in index[:limit]:
                chans = []
                for key in MODS:
                    f = next((Path(case.where) / "x").parent.glob(f"SMIR.Brain.XX.O.{MOD_DIR[key]}.*/*.nii"))
                    vol = nib.load(str(f)).get_fdata(dtype=np.float32)
                    chans.append(norm(key, vol)[:, :, z])
                img = torch.from_numpy(np.stack(chans))
                lab_f = next(Path(case.where).glob("SMIR.Brain.XX.O.OT.*/*.nii"))
                lab = torch.from_numpy(np.asarray(nib.load(str(lab_f)).dataobj)[None, :, :, z].astype(np.float32))
                both = torch.cat([img, lab])
                out = flip(affine(both, mode="bilinear"))
                out[:5], (out[5:] > 0.5)

        limit = min(len(index), 48)
        rows.append({"method": "reference: per-slice nibabel + MONAI RandAffine/RandFlip loop", "workers": 0,
                     "slices_per_s": rate(lambda: naive(limit), limit)})
    ref = rows[-1]["slices_per_s"]
    for r in rows:
        r["ratio_vs_reference"] = r["slices_per_s"] / ref
    report("slice_throughput", rows, f"{n} slices of 5x256x256 per epoch, {epochs} epochs; target >= 200 slices/s")


if __name__ == "__main__":
    main()
