"""A sixth recipe, written the way a new paper would be: this file and one registration call.

Two networks of a few lines each (a per-pixel "core" net on CT + perfusion maps and a 3x3
"refiner" on its output), cross-validated on subject-level folds of any CTP data set, with
per-case metrics in the CTP format the overview reads, a table, a report, a ``describe`` and a
demo part. Nothing outside this file names it; :func:`register` adds it to the registry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from strokesynth._fs import write_json_atomic
from strokesynth.config import bounded, load_shipped
from strokesynth.data.splits import subject_kfold
from strokesynth.io import open_cohort
from strokesynth.recipes.recipe import DemoCohort, DemoPart, Recipe, RecipeOption
from strokesynth.registry import Registry
from strokesynth.report.html import esc, write_page
from strokesynth.report.overview import ctp_rows
from strokesynth.runs import RunDir

CHANNELS = ("ct", "cbf", "cbv", "mtt", "tmax")
NETS: Registry = Registry("toy network")


@NETS.register("core")
def core_net(width: int) -> nn.Module:
    """Per-pixel core probability logits from the five channels."""
    return nn.Sequential(nn.Conv2d(len(CHANNELS), width, 1), nn.ReLU(), nn.Conv2d(width, 1, 1))


@NETS.register("refiner")
def refiner_net(width: int) -> nn.Module:
    """A 3x3 smoothing of the core logits."""
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))


@dataclass
class ToyConfig:
    name: str = "toy_recipe"
    dataset: str = ""
    folds: int = bounded(2, lo=2, hi=20)
    seed: int = 0
    width: int = bounded(4, lo=1, hi=64)
    steps: int = bounded(30, lo=1, hi=10_000)


SHIPPED = {"tiny": ToyConfig, "paper": lambda: ToyConfig(name="toy_recipe_paper", width=32, steps=300)}


def load_toy_config(path: str | os.PathLike | None, overrides: list[str]) -> ToyConfig:
    return load_shipped(ToyConfig, SHIPPED, Path(__file__).parent / "no_configs", path, overrides)


def _slices(case) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001 - a Case
    x = np.stack([case[k].array for k in CHANNELS]).astype(np.float32)  # (C, X, Y, Z)
    x = (x - x.mean(axis=(1, 2, 3), keepdims=True)) / (x.std(axis=(1, 2, 3), keepdims=True) + 1e-6)
    y = case["lesion"].array.astype(np.float32)
    return torch.from_numpy(x).permute(3, 0, 1, 2), torch.from_numpy(y[None]).permute(3, 0, 1, 2)  # (Z, C, X, Y)


def run_toy(cfg: ToyConfig, out: str | os.PathLike, *, force: bool = False, resume: bool = False,
            echo=print) -> dict[str, Any]:  # noqa: ANN001
    """Train both nets per fold on the training subjects, score the held-out cases."""
    cases = open_cohort(cfg.dataset, require=[*CHANNELS, "lesion"]).cases
    splits = subject_kfold(cases, cfg.folds, cfg.seed)
    run = RunDir.create(out, force=force)
    run.save_config(cfg)
    rows = []
    for fold in splits.folds:
        torch.manual_seed(cfg.seed + fold.index)
        nets = nn.Sequential(NETS.build("core", cfg.width), NETS.build("refiner", cfg.width))
        opt = torch.optim.Adam(nets.parameters(), lr=1e-2)
        train = [_slices(c) for c in cases if c.id not in fold.val_cases]
        x, y = torch.cat([t[0] for t in train]), torch.cat([t[1] for t in train])
        for _ in range(cfg.steps):
            opt.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(nets(x), y, pos_weight=torch.tensor(5.0))
            loss.backward()
            opt.step()
        with torch.no_grad():
            for c in [c for c in cases if c.id in fold.val_cases]:
                xv, yv = _slices(c)
                pred = (nets(xv) > 0).float()
                inter, total = float((pred * yv).sum()), float(pred.sum() + yv.sum())
                lesion = bool(yv.sum() > 0)
                ml = float(np.prod(c["lesion"].spacing)) / 1000
                rows.append({"method": "toy", "case": c.id, "lesion": str(lesion),
                             "dice": 2 * inter / total if lesion and total else float("nan"),
                             "avd_ml": abs(float(pred.sum() - yv.sum())) * ml, "fp_ml": float(pred.sum()) * ml})
        echo(f"toy fold {fold.index}: loss {float(loss):.3f}")
    run.save_table("metrics/cases.csv", rows)
    dice = [r["dice"] for r in rows if r["lesion"] == "True"]
    table = {"cases": len(rows), "mean_dice": float(np.nanmean(dice)) if dice else float("nan")}
    write_json_atomic(run.file("toy_table.json"), table)
    return table


def toy_sections(folder: str | os.PathLike) -> list[tuple[str, str, str]]:
    table = RunDir(folder).load_json("toy_table.json")
    dice = f"{table['mean_dice']:.3f}"
    return [("table", "Toy table", f"<p>toy recipe: mean Dice {esc(dice)} over {table['cases']} held-out cases</p>")]


def write_toy_report(folder: str | os.PathLike) -> Path:
    return write_page(Path(folder) / "report.html", "toy recipe", toy_sections(folder), "")


def describe_toy(config: str, size: int | None = None) -> str:
    cfg = load_toy_config(config, [])
    lines = [f"toy recipe {cfg.name}: width {cfg.width}"]
    for name in NETS.names():
        net = NETS.build(name, cfg.width)
        lines.append(f"{name:<10} {sum(p.numel() for p in net.parameters()):>8,} parameters")
    return "\n".join(lines)


def toy_overview(folder: Path) -> list[dict[str, Any]]:
    return ctp_rows("6 toy", "toy: two convolutions", folder / "metrics" / "cases.csv")


def demo_cohort(c: DemoCohort) -> list[str]:
    return [f"dataset={c.data}", f"folds={c.folds}", f"seed={c.seed}"]


RECIPE = Recipe(
    name="toy-sixth",
    summary="A toy sixth paper: two convolutions on CT + perfusion maps",
    help="A toy sixth paper: two convolutions on CT + perfusion maps, cross-validated.",
    load_config=load_toy_config,
    run=run_toy,
    report=write_toy_report,
    sections=toy_sections,
    describe=describe_toy,
    overview=toy_overview,
    markers=("toy_table.json",),
    options=(RecipeOption("--width", "Channels of both nets [config: 4].", lambda v: [f"width={int(v)}"],
                          metavar="N"),),
    demo=DemoPart(key="toy", order=6, heading="6. A toy sixth paper", folder="toy", budget=("steps=20",),
                  cohort=demo_cohort, short="6. Toy"),
)
