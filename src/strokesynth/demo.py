"""The main job on embedded data, as far as the toolkit goes today.

Generates a digital stroke phantom cohort (ISLES 2018 layout, perfusion maps computed from
the simulated 4D CTP), writes a perfusion-accuracy report against the phantom's ground truth,
checks the cohort's integrity, makes subject-level folds, builds the training and validation
slice datasets of fold 0 with augmentation and the on-disk cache, runs one pass of a
DataLoader over them, then cross-validates a tiny U-Net segmenter by subject and prints its
metric table next to the CBF-threshold baseline. Everything goes into one run folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from strokesynth.data.config import DataConfig, fold_datasets
from strokesynth.data.splits import subject_kfold
from strokesynth.engine.config import TrainConfig
from strokesynth.engine.cv import run_training
from strokesynth.errors import DataError
from strokesynth.io import open_cohort
from strokesynth.io.integrity import check_dataset, format_report
from strokesynth.phantom import PhantomConfig, cohort_summary, generate_cohort, write_phantom
from strokesynth.phantom.validation import accuracy_table, maps_vs_truth, osipi_accuracy, summarize_osipi
from strokesynth.report.figures import channel_montage
from strokesynth.report.perfusion import write_perfusion_report
from strokesynth.runs import RunDir


def run_demo(
    out: str | os.PathLike,
    *,
    subjects: int = 8,
    size: int = 128,
    seed: int = 0,
    force: bool = False,
    dro: str | os.PathLike | None = None,
    seg_epochs: int = 25,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Run the demo into the run folder ``out``; returns the summary it also saves.

    Args:
        subjects: phantom stroke subjects (one healthy subject is added).
        size: in-plane matrix of the phantom (the field of view stays 230 mm).
        dro: OSIPI DSC DRO CSV to add to the perfusion report (optional).
        seg_epochs: epochs per fold of the tiny U-Net segmenter.
    """
    t0 = time.time()
    run = RunDir.create(out, force=force)
    log = run.logger()
    data_dir = run.file("data")
    pcfg = PhantomConfig(subjects=subjects, healthy=1, seed=seed)
    pcfg.grid.spacing_mm = pcfg.grid.spacing_mm * pcfg.grid.size / size
    pcfg.grid.size = size
    scans = generate_cohort(pcfg, progress=echo)
    write_phantom(scans, data_dir, pcfg)
    log.info("wrote %d phantom scans to %s", len(scans), data_dir)

    per_case = []
    for scan in scans:
        computed = {k: scan.case[k].array for k in ("cbf", "cbv", "tmax")}
        truth = {k: scan.truth[k].array for k in ("cbf", "cbv", "tmax", "core", "penumbra", "anatomy")}
        per_case.append({"case": scan.case.id, "core_ml": scan.info["core_ml"], **maps_vs_truth(computed, truth)})
    curves = accuracy_table(repeats=50, seed=seed)
    dro_rows = summarize_osipi(osipi_accuracy(dro)) if dro else None
    write_perfusion_report(run.file("perfusion_accuracy.md"), per_case, curves, dro_rows, pcfg.perfusion_method)
    run.save_json("perfusion_accuracy.json", {"per_case": per_case, "curves": curves, "osipi": dro_rows})
    echo(f"perfusion accuracy report: {run.file('perfusion_accuracy.md')}")

    report = check_dataset(data_dir)
    echo(format_report(report))
    run.save_json("check.json", report.to_json())
    if not report.ok:
        raise DataError(data_dir, f"integrity check found {len(report.problems)} problem(s)")

    cfg = DataConfig(dataset=str(data_dir), size=(size, size), folds=min(5, subjects + 1),
                     seed=seed,
                     cache_dir=str(run.file("cache")))
    run.save_config(cfg)
    cohort = open_cohort(data_dir, require=cfg.modalities + [cfg.label])
    splits = subject_kfold(cohort.cases, cfg.folds, cfg.seed)
    splits.save(run.file("splits.json"))
    train, val = fold_datasets(cohort.cases, cfg, splits, fold=0)
    train.prepare_cache()
    val.prepare_cache()

    torch.manual_seed(seed)
    loader = DataLoader(train, batch_size=8, shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(seed))
    t1 = time.time()
    n_slices, lesion_px, total_px = 0, 0, 0
    first = None
    for batch in loader:
        n_slices += batch["image"].shape[0]
        lesion_px += int(batch["label"].sum())
        total_px += batch["label"].numel()
        if first is None:
            first = batch
    rate = n_slices / max(time.time() - t1, 1e-9)
    assert first is not None
    k = int(np.argmax(first["label"].flatten(1).sum(1).numpy()))
    channel_montage(first["image"][k].numpy(), cfg.modalities, run.file("figures", "sample.png"),
                    label=first["label"][k, 0].numpy(),
                    title=f"{first['case'][k]} z={int(first['z'][k])} (augmented training sample)")
    summary = {
        "phantom": cohort_summary(scans),
        "perfusion": {k: float(np.median([r[k] for r in per_case if r.get(k) is not None]))
                      for k in ("cbf_ratio_normal", "cbv_ratio_normal", "tmax_err_normal_s",
                                "core_dice_cbf_threshold", "hypoperfusion_dice_tmax6")
                      if any(r.get(k) is not None for r in per_case)},
        "cases": len(cohort),
        "subjects": len(cohort.subjects),
        "folds": cfg.folds,
        "fold0_train_slices": len(train),
        "fold0_val_slices": len(val),
        "channels": cfg.modalities,
        "input_size": list(cfg.size),
        "train_lesion_fraction": lesion_px / max(total_px, 1),
        "loader_slices_per_s": round(rate, 1),
        "lesion_ml": {c.id: c.lesion_ml for c in report.cases},
        "seconds": round(time.time() - t0, 2),
        "run": str(Path(out)),
    }
    seg = TrainConfig(name="unet2d_focal_tiny", data=cfg, epochs=seg_epochs, seed=seed)
    seg.model.name, seg.model.channels = "unet2d", [8, 16, 32, 64]
    seg.optim.lr, seg.plateau_patience, seg.early_stop_patience = 3e-3, 8, 15
    echo(f"training a tiny U-Net (focal loss), {cfg.folds}-fold cross-validation by subject, {seg_epochs} epochs")
    seg_summary = run_training(seg, run.file("segmentation"), echo=echo)
    summary["segmentation"] = {m: {k: round(v["mean"], 3) for k, v in s.items() if k in ("dice", "hd", "avd_ml")}
                               for m, s in seg_summary["overall"].items()}
    summary["seconds"] = round(time.time() - t0, 2)
    run.save_json("summary.json", summary)
    log.info("demo finished in %.1f s", summary["seconds"])
    return summary
