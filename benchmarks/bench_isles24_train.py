"""The tiny segmenter at the ISLES'24 working grid, with patches, against both baselines, over seeds.

On an ISLES'24-sized cohort (``phantom --layout isles24``: 512 x 512 x 80 at 0.45 x 0.45 x 2 mm;
the lesion is the final infarct on the follow-up MRI), ``train`` runs the whole subject-level
cross-validation of ``unet2d_focal_tiny`` once per seed (the seed sets the folds and the
training) at the documented working grid: slices resampled to 256 x 256 (0.9 mm), trained on
128 x 128 patches (a third centred on lesion), held-out subjects predicted by a sliding window and
scored on their native 512 x 512 grid. Each ``train`` is a fresh child process: wall time and peak
resident memory. Preprocessed arrays are cached once in ``WORK/cache`` and shared by the seeds.

Quality: every held-out lesion scan's Dice of the model against the CBF < 30 % core and the
Tmax > 6 s region on the same scan (paired, Wilcoxon), per seed and pooled over seeds; the better
baseline is the one with the higher mean Dice. Reference for time and memory, measured in the same
run: reading one subject's images whole with nibabel (``get_fdata``), as in ``bench_isles24.py``.
Run: ``python benchmarks/bench_isles24_train.py --data DIR [--seeds 0 1] [--folds 5] [--epochs 6]``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from bench_isles24 import reference_stage, stage
from strokesynth.metrics.baselines import BASELINES
from strokesynth.metrics.paired import describe_paired, paired_values

from _common import machine, report

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "seg" / "unet2d_focal_tiny.yaml"


def per_scan(cases_csv: Path) -> dict[str, dict[str, float]]:
    """method -> {case: Dice} over the held-out lesion scans of a run's ``metrics/cases.csv``."""
    out: dict[str, dict[str, float]] = {}
    with open(cases_csv, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["lesion"] == "True":
                out.setdefault(r["method"], {})[r["case"]] = float(r["dice"])
    return out


def empty_fp(cases_csv: Path) -> dict[str, float]:
    """method -> mean false-positive ml on the lesion-free held-out scans."""
    vals: dict[str, list[float]] = {}
    with open(cases_csv, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["lesion"] != "True":
                vals.setdefault(r["method"], []).append(float(r["fp_ml"]))
    return {m: float(np.mean(v)) for m, v in vals.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=60, help="training steps per epoch (batch 8)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--patch", type=int, default=128)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    reference_stage(args.data, rows)
    name = "unet2d_focal_tiny"
    scans: dict[int, dict[str, dict[str, float]]] = {}
    quality = []
    for seed in args.seeds:
        run = args.work / f"seed_{seed}"
        stage(f"train {name}, seed {seed}: {args.folds} folds x {args.epochs} epochs x {args.steps} steps, "
              f"grid {args.size} px, patches {args.patch} px, sliding-window inference",
              ["train", "--config", str(CONFIG), "--set", f"data.dataset={args.data}",
               "--set", f"data.size=[{args.size},{args.size}]", "--set", "data.mode=resample",
               "--set", f"data.patch=[{args.patch},{args.patch}]", "--set", f"data.cache_dir={args.work / 'cache'}",
               "--set", f"run.seed={seed}", "--set", f"run.folds={args.folds}", "--set", f"run.epochs={args.epochs}",
               "--set", f"run.steps_per_epoch={args.steps}", "--set", "run.threads=2", "--out", str(run), "--force"],
              rows)
        scans[seed] = per_scan(run / "metrics" / "cases.csv")
        fp = empty_fp(run / "metrics" / "cases.csv")
        for method in (name, *BASELINES):
            d = list(scans[seed].get(method, {}).values())
            quality.append({"seed": seed, "method": method, "lesion_scans": len(d),
                            "dice_mean": round(float(np.mean(d)), 3), "dice_sd": round(float(np.std(d, ddof=1)), 3),
                            "fp_ml_lesion_free": round(fp.get(method, float("nan")), 2)})
    lines = []
    pooled = {m: {f"{s}/{c}": v for s in scans for c, v in scans[s].get(m, {}).items()} for m in (name, *BASELINES)}
    better = max(BASELINES, key=lambda b: np.mean(list(pooled[b].values())))
    for base in BASELINES:
        for seed in args.seeds:
            lines.append(f"seed {seed}: " + describe_paired(paired_values(scans[seed][base], scans[seed][name], base,
                                                                           name, "dice")))
        p = paired_values(pooled[base], pooled[name], base, name, "dice")
        lines.append(f"all seeds ({len(args.seeds)}), scan-runs paired: " + describe_paired(p)
                     + ("  <- the better baseline" if base == better else ""))
        quality.append({"seed": "all", "method": f"{name} - {base}", "lesion_scans": p["cases"],
                        "dice_mean": round(p["mean_diff"], 3), "dice_sd": float("nan"),
                        "fp_ml_lesion_free": float("nan"), "better": p["better"], "worse": p["worse"],
                        "wilcoxon_p": p["wilcoxon_p"]})
    ref = [r for r in rows if r["stage"].startswith("reference")]
    for row in rows:
        row["peak / reference"] = round(row["peak_GB"] / ref[0]["peak_GB"], 2)
    report("isles24_train", rows, note=f"data {args.data}; cpu {machine()['cpu']}")
    report("isles24_train_quality", quality, note="held-out lesion scans; Dice on the native NCCT grid")
    print("\n".join(lines))
    (args.work / "paired.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
