"""Peak memory of every recipe's ``paper`` config at batch size 1 on CPU, on ISLES'24-sized data.

Each ``paper`` config (the five segmenters of ``train``, ``ctmr-cgan``, ``pseudo-dwi``,
``pseudo-healthy`` and ``labelmap-augmentation``) runs through the CLI as a fresh child process
with its networks, input sizes and losses as the paper has them, but batch size 1 and a budget of
one epoch of two steps (``pseudo-healthy`` and ``labelmap-augmentation`` have no step limit: a few
slices and subjects instead; the lesion GAN keeps the paper's 500 epochs, as one epoch makes no
lesion to inject and the recipe stops there: 2000 steps of batch 1 on 4 training masks), on an
ISLES'24-layout cohort at real size (512 x 512 x 80 at 0.45 x 0.45 x 2 mm, 40 CTP frames), slices
resampled to the config's input size. Training, the choice of the checkpoint and the held-out
inference and scoring all run, so the peak covers every stage. The label-map recipe makes its own
whole-brain MR phantom (ISLES'24 has no label maps), at the
paper's 128 x 128 x 32 grid with few subjects. Goal: every peak under 12 GB. Reference in the same
run: reading one subject's images whole with nibabel (``get_fdata``), as in ``bench_isles24.py``.

Run: ``python benchmarks/bench_paper_memory.py --data DIR --work WORK [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench_isles24 import reference_stage, stage

from _common import machine, report

ROOT = Path(__file__).resolve().parents[1]
GOAL_GB = 12.0
BATCH1 = ["--set", "run.batch_size=1", "--set", "run.epochs=1", "--set", "run.steps_per_epoch=2",
          "--set", "run.folds=2", "--set", "run.folds_to_run=[0]", "--set", "data.mode=resample"]


def runs(data: Path, cache: Path) -> dict[str, list[str]]:
    """name -> CLI arguments (the run folder is added); every CTP run shares one disk cache of
    preprocessed arrays (content-keyed), as a user with several configs would."""
    out = {f"train {name}": ["train", "--config", str(ROOT / "configs" / "seg" / f"{name}.yaml"),
                             "--set", f"data.dataset={data}", "--set", f"data.cache_dir={cache}", *BATCH1]
           for name in ("pspnet_focal", "pspnet_ce", "unet2d_focal", "unet3d_focal", "vnet_focal")}
    for name in ("unet3d_focal", "vnet_focal"):  # whole 80-slice volumes do not fit at 256 px: a 128 px grid,
        out[f"train {name} at a 128 px grid"] = [*out[f"train {name}"], "--set", "data.size=[128,128]"]
        # or in-plane blocks of the 256 px grid with every slice (sliding windows at inference)
        out[f"train {name} on 128 x 128 x Z blocks of the 256 px grid"] = [
            *out[f"train {name}"], "--set", "data.patch=[128,128]"]

    def part(prefix: str) -> list[str]:
        return [x for kv in (f"{prefix}.run.batch_size=1", f"{prefix}.run.epochs=1", f"{prefix}.run.steps_per_epoch=2",
                             f"{prefix}.data.cache_dir={cache}") for x in ("--set", kv)]

    out["recipe ctmr-cgan paper"] = ["recipe", "ctmr-cgan", "--config", "paper", "--data", str(data), "--set", "folds=2",
                                     *part("synthesis"), *part("segmentation"), "--set", "synthesis.data.mode=resample",
                                     "--set", "segmentation.data.mode=resample",
                                     "--set", "segmentation.fine_tune_epochs=1",
                                     # the cGANs need both folds (out-of-fold DWI); the segmenters train fold 0
                                     "--set", "segmentation.run.folds_to_run=[0]"]
    out["recipe pseudo-dwi paper (Table 5, end to end)"] = [
        "recipe", "pseudo-dwi", "--config", "paper", "--data", str(data), "--set", "folds=2", "--set", "tables=[5]",
        "--set", "rows=['DWI^(o,l,h) end to end']", *part("system"), "--set", "system.data.mode=resample",
        "--set", "system.optim.milestones=[1]", "--set", "system.run.folds_to_run=[0]"]
    out["recipe pseudo-healthy paper (DWI)"] = [
        "recipe", "pseudo-healthy", "--config", "paper", "--data", str(data), "--contrasts", "dwi",
        "--set", "folds=2", "--set", "folds_to_run=[0]", "--set", "real_case=",
        *[x for kv in ("system.run.batch_size=1", "system.run.epochs=1", "segmentor.run.batch_size=1",
                       "segmentor.run.epochs=1", "system.data.middle_slices=6", "segmentor.data.middle_slices=6",
                       "system.data.spacing_mm=1.8", "segmentor.data.spacing_mm=1.8") for x in ("--set", kv)]]
    out["recipe labelmap-augmentation paper (own MR phantom)"] = [
        "recipe", "labelmap-augmentation", "--config", "paper",
        *[x for kv in ("phantom.stroke=6", "phantom.healthy=4", "n_synthetic=2", "finetune_cases=[]", "fractions=[]",
                       "seeds=[0]", "finetune_epochs=1", "translation.run.batch_size=1", "translation.run.epochs=1",
                       "lesion_gan.run.batch_size=1", "segmenter.run.batch_size=1",  # the lesion GAN: its 500 epochs
                       "segmenter.run.epochs=1", "segmenter.run.steps_per_epoch=2") for x in ("--set", kv)]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="An ISLES'24-layout cohort at real size.")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--only", nargs="*", default=None, help="Run only the named entries (substring match).")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    reference_stage(args.data, rows)
    note = f"data {args.data}; cpu {machine()['cpu']}; goal: every peak < {GOAL_GB:g} GB"
    for i, (name, cli) in enumerate(runs(args.data.resolve(), (args.work / "cache").resolve()).items()):
        if args.only and not any(o in name for o in args.only):
            continue
        try:
            stage(f"{name}, batch 1", [*cli, "--out", str(args.work / f"run_{i}"), "--force"], rows)
        except SystemExit as exc:  # one failure is a row, not the end of the table
            rows.append({"stage": f"{name}, batch 1", "seconds": float("nan"), "peak_GB": float("nan"),
                         "error": str(exc).splitlines()[-1][:200]})
            print(exc)
        report("paper_memory", with_goal(rows), note=note)  # after every run: a stopped benchmark keeps its rows


def with_goal(rows: list[dict]) -> list[dict]:
    """``rows`` with each peak as a ratio to the reference's (the first row) and against the goal."""
    ref = rows[0]["peak_GB"]
    out = []
    for row in rows:
        peak = row["peak_GB"]
        out.append({**row, "peak / reference": round(peak / ref, 2),
                    f"under {GOAL_GB:g} GB": bool(peak < GOAL_GB) if peak == peak else None})
    return out


if __name__ == "__main__":
    main()
