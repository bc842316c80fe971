"""Abulnaga & Rubin (ISLES 2018): segmentation architectures x {cross entropy, focal loss}.

Trains each architecture with each loss by the same subject-level cross-validation and prints
one table (mean ± sd over held-out cases of Dice, HD, ASSD, precision, recall, AVD, lesion F1),
next to the CBF-threshold baseline.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from strokesynth._fs import write_json_atomic, write_text_atomic
from strokesynth.config import load_config
from strokesynth.errors import ConfigError, DataError
from strokesynth.metrics.baselines import BASELINE
from strokesynth.nets.registry import NETWORKS
from strokesynth.recipes.cv import format_table, run_training
from strokesynth.recipes.registry import RECIPES
from strokesynth.runs import RunDir
from strokesynth.systems.segmenter import TrainConfig

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "seg"
ARCHITECTURES = tuple(NETWORKS.names(role="segmenter"))
LOSSES = ("ce", "focal")


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


@RECIPES.register("seg-comparison", summary="Abulnaga & Rubin: segmentation architectures x {CE, focal}, one CV table")
def run_comparison(dataset: str | os.PathLike, out: str | os.PathLike, *, tiny: bool = True,
                   architectures: Sequence[str] = ARCHITECTURES, losses: Sequence[str] = LOSSES,
                   overrides: Sequence[str] = (), force: bool = False,
                   echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Train every architecture x loss into ``out/<arch>_<loss>/``; write and print the table."""
    bad = [a for a in architectures if a not in ARCHITECTURES] + [x for x in losses if x not in LOSSES]
    if bad:
        raise ConfigError("recipe", f"unknown architecture/loss {bad}")
    out = Path(out)
    configs = [comparison_config(arch, loss, str(dataset), tiny, overrides) for arch in architectures for loss in losses]
    if not Path(dataset).is_dir():
        raise DataError(dataset, "data set folder not found")
    RunDir.create(out, force=force)  # one folder for the comparison: replaced or removed as a whole
    merged: dict[str, Any] = {}
    for cfg in configs:
        echo(f"== {cfg.name}")
        summary = run_training(cfg, out / cfg.name, force=True, echo=echo)
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
    write_text_atomic(out / "table.txt", table + "\n")
    write_json_atomic(out / "table.json", merged)
    echo("\n" + table)
    return merged
