"""Abulnaga & Rubin (ISLES 2018): segmentation architectures x {cross entropy, focal loss}.

Trains each architecture with each loss by the same subject-level cross-validation and prints
one table (mean ± sd over held-out cases of Dice, HD, ASSD, precision, recall, AVD, lesion F1),
next to the CBF-threshold baseline.

With ``floor`` it adds the plain-U-Net floor: MONAI's ``BasicUNet`` (16-32-64-128-256) with
cross entropy + soft Dice and half of every batch from lesion slices, trained with the data,
batch size, epochs and selection protocol of the first slice-wise cell, so that it takes the same
number of optimiser steps. Every cell is then compared with it scan by scan on the held-out lesion
scans (paired Dice difference, Wilcoxon), and each cell's steps are in the table. A network
that does not beat a stock U-Net at equal steps has its training set-up to answer for.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from strokesynth._fs import write_json_atomic, write_text_atomic
from strokesynth.config import load_config
from strokesynth.engine.config import OptimConfig
from strokesynth.errors import ConfigError, DataError
from strokesynth.metrics.baselines import BASELINE
from strokesynth.nets.registry import NETWORKS
from strokesynth.recipes.cv import describe_paired, format_table, paired_dice, run_training
from strokesynth.recipes.registry import RECIPES
from strokesynth.runs import RunDir
from strokesynth.systems.segmenter import LossConfig, ModelConfig, TrainConfig

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "seg"
ARCHITECTURES = tuple(NETWORKS.names(role="segmenter"))
LOSSES = ("ce", "focal")
FLOOR = "floor_basicunet"
FLOOR_CHANNELS = [16, 32, 64, 128, 256]


def comparison_config(arch: str, loss: str, dataset: str, tiny: bool, overrides: Sequence[str] = ()) -> TrainConfig:
    """The config of one cell: the shipped ``<arch>_focal[_tiny].yaml`` with the loss swapped."""
    name = f"{arch}_focal{'_tiny' if tiny else ''}.yaml"
    path = CONFIGS / name
    cfg = load_config(TrainConfig, path if path.exists() else None, overrides)
    if not path.exists():  # installed without the repository's configs: same settings in code
        cfg.model.name = arch
    cfg.loss.name = loss
    cfg.data.dataset = str(dataset)
    cfg.name = f"{arch}_{loss}"
    return cfg


def floor_config(reference: TrainConfig) -> TrainConfig:
    """The plain-U-Net floor trained like ``reference`` (same data, batch size, epochs, steps per
    epoch, early stopping, selection protocol and seed): MONAI ``BasicUNet`` with
    :data:`FLOOR_CHANNELS`, cross entropy + soft Dice, half of every batch from lesion slices,
    Adam 1e-3 at a constant rate."""
    cfg = copy.deepcopy(reference)
    cfg.name = FLOOR
    cfg.model = ModelConfig(name="basicunet", channels=list(FLOOR_CHANNELS))
    cfg.loss = LossConfig(name="ce", dice_weight=1.0)
    cfg.optim = OptimConfig(name="adam", lr=1e-3)
    cfg.run.lesion_fraction = 0.5
    cfg.fine_tune_epochs = 0
    return cfg


@RECIPES.register("seg-comparison", summary="Abulnaga & Rubin: segmentation architectures x {CE, focal}, one CV table")
def run_comparison(dataset: str | os.PathLike, out: str | os.PathLike, *, tiny: bool = True,
                   architectures: Sequence[str] = ARCHITECTURES, losses: Sequence[str] = LOSSES,
                   overrides: Sequence[str] = (), force: bool = False, floor: bool = False,
                   echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Train every architecture x loss into ``out/<arch>_<loss>/``; write and print the table.

    With ``floor`` the plain-U-Net floor (:func:`floor_config`) trains into ``out/floor_basicunet/``
    and ``table.json`` gains ``steps`` (mean optimiser steps per fold of each cell) and
    ``paired_vs_floor`` (each cell's paired Dice against the floor on the held-out lesion scans).
    """
    bad = [a for a in architectures if a not in ARCHITECTURES] + [x for x in losses if x not in LOSSES]
    if bad:
        raise ConfigError("recipe", f"unknown architecture/loss {bad}")
    out = Path(out)
    configs = [comparison_config(arch, loss, str(dataset), tiny, overrides) for arch in architectures for loss in losses]
    if floor:
        slice_wise = [c for c in configs if not c.model.volumetric]
        configs.append(floor_config((slice_wise or configs)[0]))
    if not Path(dataset).is_dir():
        raise DataError(dataset, "data set folder not found")
    RunDir.create(out, force=force)  # one folder for the comparison: replaced or removed as a whole
    merged: dict[str, Any] = {}
    steps: dict[str, float] = {}
    for cfg in configs:
        echo(f"== {cfg.name}")
        summary = run_training(cfg, out / cfg.name, force=True, echo=echo)
        steps[cfg.name] = float(sum(f["steps"] for f in summary["folds"]) / max(len(summary["folds"]), 1))
        if not merged:
            merged = {k: summary[k] for k in ("protocol", "protocol_text", "scans")}
        for part in ("lesion", "empty", "overall"):
            table = merged.setdefault(part, {})
            table[cfg.name] = summary[part][cfg.name]
            if BASELINE in summary[part]:
                table.setdefault(BASELINE, summary[part][BASELINE])
    for part in ("lesion", "empty", "overall"):  # the baseline last
        if BASELINE in merged[part]:
            merged[part][BASELINE] = merged[part].pop(BASELINE)
    table = format_table(merged)
    if floor:
        merged["steps"] = steps
        cases = {c.name: out / c.name / "metrics" / "cases.csv" for c in configs}
        merged["paired_vs_floor"] = {c.name: paired_dice(cases[FLOOR], FLOOR, cases[c.name], c.name)
                                     for c in configs if c.name != FLOOR}
        table += "\n\noptimiser steps per fold: " + ", ".join(f"{k} {v:.0f}" for k, v in steps.items())
        table += "".join("\n" + describe_paired(p) for p in merged["paired_vs_floor"].values())
    write_text_atomic(out / "table.txt", table + "\n")
    write_json_atomic(out / "table.json", merged)
    echo("\n" + table)
    return merged
