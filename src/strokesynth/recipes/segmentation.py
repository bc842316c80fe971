"""Abulnaga & Rubin (ISLES 2018): segmentation architectures x {cross entropy, weighted CE, focal loss}.

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

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strokesynth._fs import write_json_atomic, write_text_atomic
from strokesynth.config import load_config, replaced, save_config
from strokesynth.engine.config import OptimConfig
from strokesynth.errors import ConfigError, DataError
from strokesynth.metrics.baselines import BASELINES
from strokesynth.metrics.paired import describe_paired, paired_dice
from strokesynth.metrics.tables import format_table
from strokesynth.nets.registry import NETWORKS
from strokesynth.recipes.cv import run_training
from strokesynth.runs import RunDir
from strokesynth.systems.segmenter import LossConfig, ModelConfig, TrainConfig

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "seg"
ARCHITECTURES = tuple(NETWORKS.names(role="segmenter"))
PAPER_ARCHITECTURES = ("pspnet", "unet2d", "unet3d", "vnet")  # Abulnaga & Rubin's comparison
LOSSES = ("ce", "weighted_ce", "focal")  # the paper compares all three
FLOOR = "floor_basicunet"
FLOOR_CHANNELS = [16, 32, 64, 128, 256]


def comparison_config(arch: str, loss: str, dataset: str, tiny: bool, overrides: Sequence[str] = ()) -> TrainConfig:
    """The config of one cell: the shipped ``<arch>_focal[_tiny].yaml`` with the loss swapped."""
    name = f"{arch}_focal{'_tiny' if tiny else ''}.yaml"
    path = CONFIGS / name
    cfg = load_config(TrainConfig, path if path.exists() else None, overrides)
    own = {} if path.exists() else {"model.name": arch}  # installed without the repository's configs: same in code
    return replaced(cfg, {**own, "loss.name": loss, "data.dataset": str(dataset)}, name=f"{arch}_{loss}")


def floor_config(reference: TrainConfig) -> TrainConfig:
    """The plain-U-Net floor trained like ``reference`` (same data, batch size, epochs, steps per
    epoch, early stopping, selection protocol and seed): MONAI ``BasicUNet`` with
    :data:`FLOOR_CHANNELS`, cross entropy + soft Dice, half of every batch from lesion slices,
    Adam 1e-3 at a constant rate."""
    return replaced(reference, {"run.lesion_fraction": 0.5}, name=FLOOR,
                    model=ModelConfig(name="basicunet", channels=list(FLOOR_CHANNELS)),
                    loss=LossConfig(name="ce", dice_weight=1.0), optim=OptimConfig(name="adam", lr=1e-3),
                    fine_tune_epochs=0)


@dataclass
class SegComparisonConfig:
    """The comparison: which architectures and losses, at which size, on which data.

    Attributes:
        name: the run folder's default name (``runs/<name>``).
        dataset: the data set folder (CT and the perfusion maps, the lesion).
        tiny: the CPU variants of the shipped ``configs/seg/<arch>_focal_tiny.yaml`` (``False``:
            the paper-size ``<arch>_focal.yaml``).
        architectures: segmentation networks (registry names; empty: the paper's four, PSPNet, U-Net 2D,
            3D U-Net and V-Net).
        losses: the losses of every architecture.
        floor: add the plain-U-Net floor and compare every cell with it scan by scan.
        train: ``key=value`` overrides of every cell's training config (``run.epochs=2``).
    """

    name: str = "seg_comparison"
    dataset: str = ""
    tiny: bool = True
    architectures: list[str] = field(default_factory=list)
    losses: list[str] = field(default_factory=lambda: list(LOSSES))
    floor: bool = False
    train: list[str] = field(default_factory=list)

    def cells(self) -> list[TrainConfig]:
        """The training config of every cell (architecture x loss), then the floor's."""
        archs = self.architectures or list(PAPER_ARCHITECTURES)
        configs = [comparison_config(a, loss, self.dataset, self.tiny, self.train) for a in archs for loss in self.losses]
        if self.floor:
            slice_wise = [c for c in configs if not c.model.volumetric]
            configs.append(floor_config((slice_wise or configs)[0]))
        return configs


SHIPPED = {"tiny": SegComparisonConfig, "paper": lambda: SegComparisonConfig(name="seg_comparison_paper", tiny=False)}


def load_comparison_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> SegComparisonConfig:
    """A shipped config (``tiny``, ``paper``) or a YAML file, with ``key=value`` overrides.

    An override whose key is not a field of :class:`SegComparisonConfig` (``run.epochs=2``) is
    an override of every cell's training config (``train``); every cell is built and checked here.
    """
    fields = {f.name for f in dataclasses.fields(SegComparisonConfig)}
    own = [o for o in overrides if o.split("=", 1)[0].strip().split(".")[0] in fields]
    train = [o for o in overrides if o not in own]
    base = SHIPPED[str(path)]() if path is not None and str(path) in SHIPPED and not Path(path).exists() else None
    cfg = load_config(SegComparisonConfig, None if base is not None else path, own, base=base)
    cfg = replaced(cfg, train=[*cfg.train, *train])
    bad = [a for a in cfg.architectures if a not in ARCHITECTURES] + [x for x in cfg.losses if x not in LOSSES]
    if bad:
        raise ConfigError("recipe", f"unknown architecture/loss {bad} (architectures: {', '.join(ARCHITECTURES)}; "
                                    f"losses: {', '.join(LOSSES)})")
    if not cfg.losses:
        raise ConfigError("losses", "name at least one loss")
    cfg.cells()  # every cell's config checked before anything runs
    return cfg


def run_comparison(cfg: SegComparisonConfig, out: str | os.PathLike, *, force: bool = False, resume: bool = False,
                   echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Train every architecture x loss into ``out/<arch>_<loss>/``; write and print the table.

    With ``floor`` the plain-U-Net floor (:func:`floor_config`) trains into ``out/floor_basicunet/``
    and ``table.json`` gains ``steps`` (mean optimiser steps per fold of each cell) and
    ``paired_vs_floor`` (each cell's paired Dice against the floor on the held-out lesion scans).
    """
    if resume:
        raise ConfigError("--resume", "the segmentation comparison does not resume; run it again with --force "
                                      "(or resume one cell with `strokesynth train --resume --out OUT/<cell>`)")
    out = Path(out)
    configs = cfg.cells()
    floor, dataset = cfg.floor, cfg.dataset
    if not Path(dataset).is_dir():
        raise DataError(dataset, "data set folder not found")
    run = RunDir.create(out, force=force)  # one folder for the comparison: replaced or removed as a whole
    save_config(cfg, run.file("comparison.yaml"))
    merged: dict[str, Any] = {}
    steps: dict[str, float] = {}
    for cell in configs:
        echo(f"== {cell.name}")
        summary = run_training(cell, out / cell.name, force=True, echo=echo)
        steps[cell.name] = float(sum(f["steps"] for f in summary["folds"]) / max(len(summary["folds"]), 1))
        if not merged:
            merged = {k: summary[k] for k in ("protocol", "protocol_text", "scans")}
        for part in ("lesion", "empty", "overall"):
            table = merged.setdefault(part, {})
            table[cell.name] = summary[part][cell.name]
            for base in BASELINES:
                if base in summary[part]:
                    table.setdefault(base, summary[part][base])
    for part in ("lesion", "empty", "overall"):  # the baselines last
        for base in BASELINES:
            if base in merged[part]:
                merged[part][base] = merged[part].pop(base)
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
