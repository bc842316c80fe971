"""What resampling unevenly timed CTP frames costs: the same phantom scans analysed with every
frame (1 s), with the frames after 30 s thinned to every third (times in a sidecar, resampled onto
1 s by strokesynth) and with those thinned frames read as if uniform (the shortcut of a header
that holds one interval), all scored against the phantom's truth.

The reference is the analysis of every frame of the same scan, in the same run; ratios are not
meaningful for Dice, so the table shows the paired values. 4 stroke subjects per seed at 96 px.
Run: ``python benchmarks/perfusion_uneven.py [--seeds 1 2]``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from strokesynth.data.volume import Volume
from strokesynth.perfusion.maps import analyze_ctp
from strokesynth.phantom import PhantomConfig, generate_cohort
from strokesynth.phantom.validation import maps_vs_truth

from _common import report

KEYS = ("cbf_ratio_normal", "cbv_ratio_normal", "tmax_err_normal_s", "core_dice_cbf_threshold", "hypoperfusion_dice_tmax6")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    torch.set_num_threads(2)
    rows = []
    for seed in args.seeds:
        cfg = PhantomConfig(subjects=4, seed=seed)
        cfg.grid.size, cfg.grid.spacing_mm, cfg.grid.slices, cfg.grid.two_slab_prob = 96, 2.4, [6], 0.0
        cfg.stroke.no_core_prob = 0.0
        cfg.bolus.dt, cfg.bolus.frames = 1.0, 60
        scores: dict[str, list[dict]] = {"every frame (reference)": [], "uneven, resampled (strokesynth)": [],
                                         "uneven, read as uniform": []}
        for scan in generate_cohort(cfg):
            ctp = scan.case["ctp"].load()
            keep = np.array([i for i in range(ctp.shape[-1]) if i <= 30 or (i - 30) % 3 == 0])
            times = keep * ctp.dt
            truth = {k: v.array for k, v in scan.truth.items()}
            variants = {
                "every frame (reference)": Volume(ctp.array[..., : keep[-1] + 1], ctp.affine, dt=ctp.dt),
                "uneven, resampled (strokesynth)": Volume(ctp.array[..., keep], ctp.affine, dt=None,
                                                          meta={"sidecar": {"FrameTimesStart": times.tolist()}}),
                "uneven, read as uniform": Volume(ctp.array[..., keep], ctp.affine,
                                                  dt=float(np.median(np.diff(times)))),
            }
            for name, volume in variants.items():
                result = analyze_ctp(volume)
                maps = {k: result.maps[k].array for k in ("cbf", "cbv", "tmax")}
                scores[name].append(maps_vs_truth(maps, truth, aif_voxels=result.aif.voxels))
        for name, values in scores.items():
            rows.append({"seed": seed, "frames": name,
                         **{k: round(float(np.median([v[k] for v in values if v.get(k) is not None])), 3) for k in KEYS}})
    report("perfusion_uneven", rows, note="medians over the scans of each seed; every frame at 1 s is the reference")


if __name__ == "__main__":
    main()
