"""Every recipe end to end on an ISLES'24-sized cohort: working grid, wall time and peak memory.

On a cohort in the ISLES'24 layout at real size (``phantom --layout isles24``: 512 x 512 x 80 at
0.45 x 0.45 x 2 mm, 40 CTP frames; the label is the final infarct on the follow-up MRI), each
recipe runs through the CLI as a fresh child process at tiny budgets and its documented working
grid; the child's wall time and peak resident memory are recorded, with the headline numbers of
its own table (held-out scans, paired against the CBF < 30 % and Tmax > 6 s baselines where the
recipe segments CTP scans). Reference for time and memory in the same run: reading one subject's
images whole with nibabel (``get_fdata``), as in ``bench_isles24.py``.

Run: ``python benchmarks/bench_isles24_recipes.py --data DIR --work WORK [--recipes ctmr-cgan pseudo-dwi ...]``.
Each recipe's run folder is ``WORK/<recipe>``; its report states which session every image came from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench_isles24 import reference_stage, stage

from _common import machine, report

#: recipe -> (description of the working grid and budget, CLI arguments after ``--data DIR``)
RECIPES: dict[str, tuple[str, list[str]]] = {
    "ctmr-cgan": (
        "3 folds; cGAN on whole 256 x 256 slices (0.9 mm), 4 epochs x 60 steps (batch 1); FCN and FCN-CGAN on "
        "128 x 128 patches of the 256 grid, 6 epochs x 60 steps (batch 8), sliding-window inference",
        ["recipe", "ctmr-cgan", "--config", "tiny", "--set", "folds=3",
         "--set", "synthesis.data.size=[256,256]", "--set", "synthesis.data.mode=resample",
         "--set", "synthesis.run.epochs=4", "--set", "synthesis.run.steps_per_epoch=60",
         "--set", "segmentation.data.size=[256,256]", "--set", "segmentation.data.mode=resample",
         "--set", "segmentation.data.patch=[128,128]",
         "--set", "segmentation.run.epochs=6", "--set", "segmentation.run.steps_per_epoch=60"]),
    "pseudo-dwi": (
        "3 folds; Table 5's end-to-end row (feature extractor on the raw CTP, pseudo-DWI generator, SLNet) on "
        "whole 256 x 256 slices (0.9 mm), 6 epochs x 12 steps (batch 4)",
        ["recipe", "pseudo-dwi", "--config", "tiny", "--set", "folds=3", "--set", "tables=[5]",
         "--set", "rows=['DWI^(o,l,h) end to end']", "--set", "system.data.size=[256,256]",
         "--set", "system.data.mode=resample", "--set", "system.run.epochs=6", "--set", "system.optim.milestones=[5]"]),
    "pseudo-healthy": (
        "fold 0 of 3; follow-up DWI slices resampled to 128 x 128 (1.8 mm), every model 6 epochs",
        ["recipe", "pseudo-healthy", "--config", "tiny", "--contrasts", "dwi", "--set", "system.data.size=128",
         "--set", "segmentor.data.size=128", "--set", "system.run.epochs=6", "--set", "segmentor.run.epochs=6"]),
    "labelmap-augmentation": (
        "the demo's budget on the follow-up DWI and its label map (ses-02) put on a 64 x 64 x 16 working grid "
        "(3.6 mm in plane, 10 mm slices): lesion GAN 200 epochs (batch 2), Pix2Pix 4 epochs, 3D U-Net 8 x 20 steps",
        ["recipe", "labelmap-augmentation", "--config", "tiny", "--set", "grid.spacing_mm=3.6",
         "--set", "grid.slice_mm=10", "--set", "grid.slices=16", "--set", "pix2pix_l1=[100.0]",
         "--set", "models=[pix2pix]", "--set", "n_synthetic=12", "--set", "finetune_cases=[]", "--set", "fractions=[]",
         "--set", "seeds=[0]", "--set", "translation.run.epochs=4", "--set", "segmenter.run.epochs=8"]),
    "demo": (
        "demo --data: 3 folds at a 128 x 128 working grid (1.8 mm); cGAN 3 epochs x 40 steps, FCN / FCN-CGAN 4 x 30 "
        "(batch 8), pseudo-DWI end to end 4 x 12 (batch 4), pseudo-healthy (proposed paired) 3 epochs on the middle "
        "20 slices",
        ["demo", "--size", "128", "--folds", "3", "--gan-epochs", "3", "--seg-epochs", "4",
         "--set", "ctmr:synthesis.run.steps_per_epoch=40", "--set", "ctmr:segmentation.run.steps_per_epoch=30",
         "--set", "pseudo-dwi:system.run.epochs=4", "--set", "pseudo-dwi:system.optim.milestones=[3]",
         "--set", "pseudo-healthy:system.run.epochs=3", "--set", "pseudo-healthy:segmentor.run.epochs=3",
         "--set", "pseudo-healthy:system.data.middle_slices=20",
         "--set", "pseudo-healthy:segmentor.data.middle_slices=20"]),
}

#: recipe -> its config parts that read CTP cases through the array cache
CACHED = {"ctmr-cgan": ("synthesis", "segmentation"), "pseudo-dwi": ("system",)}


def headline(recipe: str, run: Path) -> list[dict]:
    """The numbers a reader looks at first, from the run's own files."""
    out: list[dict] = []
    if recipe == "ctmr-cgan":
        table = json.loads((run / "table.json").read_text())
        for method, metrics in table["lesion"].items():
            out.append({"recipe": recipe, "row": method, "dice": metrics["dice"]["mean"], "n": metrics["dice"]["n"]})
    elif recipe == "demo":
        for row in json.loads((run / "summary.json").read_text())["overview"]:
            out.append({"recipe": recipe, "row": f"{row['system']}: {row['method']}", "dice": row["dice"]["mean"],
                        "n": row["n"]})
    elif recipe == "labelmap-augmentation":
        table = json.loads((run / "labelmap_table.json").read_text())
        for row, metrics in table["table_I"].items():
            out.append({"recipe": recipe, "row": row, "dice": metrics["dice"]["mean"], "n": metrics["dice"]["n"],
                        "grid": "working grid (DWI segmentation)"})
    elif recipe == "pseudo-dwi":
        tables = json.loads((run / "tables.json").read_text())
        for t in tables.values():
            for row in t.get("rows", []):
                les = row.get("lesion", {}).get("dice", {})
                out.append({"recipe": recipe, "row": row["row"], "dice": les.get("mean"), "n": les.get("n")})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--cache", type=Path, default=None,
                    help="One disk cache of preprocessed arrays for every run (keys are content fingerprints, so "
                         "runs and recipes share it safely) [each run's own].")
    ap.add_argument("--no-reference", action="store_true", help="Skip the nibabel reference (measured before).")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if not args.no_reference:
        reference_stage(args.data, rows)
    numbers: list[dict] = []
    for recipe in args.recipes:
        what, cli = RECIPES[recipe]
        run = args.work / recipe
        cache = [] if args.cache is None else [
            x for part in CACHED.get(recipe, ()) for x in ("--set", f"{part}.data.cache_dir={args.cache}")]
        at = 1 if cli[0] == "demo" else 2
        stage(f"{recipe}: {what}", [*cli[:at], "--data", str(args.data), *cli[at:], *cache, "--out", str(run), "--force"],
              rows)
        if recipe == "demo":  # the demo resets its peak per stage (clear_refs), which ru_maxrss then follows
            stages = json.loads((run / "summary.json").read_text())["peak_gb_by_stage"]
            rows[-1]["peak_GB"] = max(rows[-1]["peak_GB"], *stages.values())
        numbers += headline(recipe, run)
    ref = [r for r in rows if r["stage"].startswith("reference")]
    for row in rows:
        row["peak / reference"] = round(row["peak_GB"] / ref[0]["peak_GB"], 2) if ref else float("nan")
    report("isles24_recipes", rows, note=f"data {args.data}; cpu {machine()['cpu']}")
    if numbers:
        report("isles24_recipes_quality", numbers, note="held-out lesion scans; Dice on the native NCCT grid "
                                                        "(the label-map recipe's DWI segmenter: on its working grid)")


if __name__ == "__main__":
    main()
