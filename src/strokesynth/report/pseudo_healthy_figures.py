"""Figures of a pseudo-healthy experiment (Xia, Chartsias & Tsaftaris), drawn from the run folder
alone (the kept models, the saved slices, the table):

- ``figures/<contrast>_examples.png``: the paper's Fig. 4 analog: held-out pathological slices,
  each row's pseudo-healthy image, the true mask and the proposed models' masks;
- ``figures/<contrast>_cyclegan_failure.png``: the Fig. 2 failure mode (the CycleGAN's
  reconstruction puts a lesion where there was none), when it occurred;
- ``figures/real_<contrast>.png``: the first fold's models applied to the real case the run scored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from strokesynth.config import load_config
from strokesynth.data.pathology_slices import SliceBank, prepare_volume
from strokesynth.io import open_cohort
from strokesynth.plots import _save, panel_row
from strokesynth.recipes.pseudo_healthy import PseudoHealthyRecipeConfig, contrast_data, kept_models


def draw_figures(run_path: str | os.PathLike) -> list[Path]:
    """Every figure of the run (those whose inputs are there); returns the files written."""
    return example_figures(run_path) + real_case_figures(run_path)


def _config_and_fold(run: Path) -> tuple[PseudoHealthyRecipeConfig, int]:
    cfg = load_config(PseudoHealthyRecipeConfig, run / "config.yaml")
    return cfg, (cfg.folds_to_run or list(range(cfg.folds)))[0]


def _grid(images: list[list[tuple[str, np.ndarray, str]]], masks: list[np.ndarray], path: Path, title: str) -> None:
    """Rows of ``(name, image (S, S), colormap)`` panels with the true mask's contour in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(images), max(len(r) for r in images)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.3 * rows + 0.5), squeeze=False)
    for r, (panels, mask) in enumerate(zip(images, masks, strict=True)):
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if c >= len(panels):
                continue
            name, img, cmap = panels[c]
            ax.imshow(img.T, cmap=cmap, origin="lower", vmin=0, vmax=1)
            if mask.any() and cmap == "gray":
                ax.contour(mask.T, levels=[0.5], colors="red", linewidths=0.6, origin="lower")
            if r == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _panels(models: dict[str, Any], x: np.ndarray, m: np.ndarray, device: str = "cpu") -> list[tuple[str, np.ndarray, str]]:
    import torch

    t = torch.from_numpy(x[None, None].astype(np.float32)).to(device)
    panels = [("input", x, "gray")]
    seg = {}
    for row, model in models.items():
        panels.append((row, model.pseudo_healthy(t)[0, 0].cpu().numpy(), "gray"))
        p = model.pathology(t)
        if p is not None:
            seg[row] = p[0, 0].cpu().numpy()
    panels.append(("true mask", m.astype(float), "viridis"))
    panels += [(f"S: {row.replace('proposed ', '')}", s, "viridis") for row, s in seg.items()]
    return panels


def example_figures(run_path: str | os.PathLike) -> list[Path]:
    """Fig. 4 analog (3 held-out slices with the largest lesions) and the CycleGAN failure figure
    per contrast, from the first fold's kept models and the slices the run saved (``data/<contrast>.npz``)."""
    run = Path(run_path)
    cfg, fold = _config_and_fold(run)
    banks = {c: SliceBank.load(run / "data" / f"{c}.npz") for c in cfg.contrasts if (run / "data" / f"{c}.npz").is_file()}
    split = json.loads((run / "splits.json").read_text())
    test_cases = set(split["folds"][fold]["val_cases"]) if "folds" in split else set()
    table = json.loads((run / "ph_table.json").read_text())
    written = []
    for contrast, bank in banks.items():
        models = kept_models(run, contrast, fold, cfg.rows)
        keep = np.isin(bank.case, list(test_cases)) & bank.lesion
        idx = np.flatnonzero(keep)
        if not idx.size or not models:
            continue
        sizes = bank.masks[idx].reshape(len(idx), -1).sum(1)
        pick = idx[np.argsort(-sizes)[:3]]
        rows = [_panels(models, bank.images[i, 0], bank.masks[i, 0]) for i in pick]
        path = run / "figures" / f"{contrast}_examples.png"
        _grid(rows, [bank.masks[i, 0] for i in pick], path,
              f"{contrast.upper()}: held-out pathological slices (fold {fold}); red: true lesion")
        written.append(path)
        fails = [f for f in table["cyclegan_failures"].get(contrast, []) if f.get("fold") == fold]
        if fails and "CycleGAN" in models:
            import torch

            worst = max(fails, key=lambda f: f["invented_px"])
            i = int(np.flatnonzero((bank.case == worst["case"]) & (bank.z == worst["z"]))[0])
            x = torch.from_numpy(bank.images[i:i + 1])
            g = models["CycleGAN"]
            ph, rec = g.pseudo_healthy(x)[0, 0].numpy(), g.reconstruction(x)[0, 0].numpy()
            path = run / "figures" / f"{contrast}_cyclegan_failure.png"
            panel_row([("input", bank.images[i, 0], (0, 1), "gray", "normalised"),
                       ("CycleGAN pseudo-healthy", ph, (0, 1), "gray", "normalised"),
                       ("reconstruction", rec, (0, 1), "gray", "normalised"),
                       ("reconstruction - input", rec - bank.images[i, 0], (-0.5, 0.5), "RdBu_r", "normalised")],
                      path, label=bank.masks[i, 0],
                      title=f"{worst['case']} z={worst['z']}: the reconstruction invents a {worst['invented_px']} px "
                            "bright blob away from the true lesion (red)")
            written.append(path)
    return written


def real_case_figures(run_path: str | os.PathLike) -> list[Path]:
    """The first fold's models on the real case each contrast's entry of ``ph_table.json`` scored
    (``real_case``): its two slices with the largest expert lesion."""
    run = Path(run_path)
    table = json.loads((run / "ph_table.json").read_text(encoding="utf-8"))
    real = table.get("real_case") or {}
    if not real.get("cases"):
        return []
    cfg, fold = _config_and_fold(run)
    cases = {c.id: c for c in open_cohort(real["source"]).cases}
    written = []
    for entry in real["cases"]:
        contrast = entry["contrast"]
        models = kept_models(run, contrast, fold, cfg.rows)
        vol = prepare_volume(cases[entry["case"]], contrast_data(cfg.system.data, contrast, cfg.clip_percentiles))
        les = vol.masks.reshape(len(vol.z), -1).sum(1)
        pick = np.argsort(-les)[:2]
        path = run / entry["figure"]
        _grid([_panels(models, vol.images[i], vol.masks[i]) for i in pick], [vol.masks[i] for i in pick], path,
              f"REAL DATA: {entry['case']} {contrast.upper()} (models trained on the phantom only; red: expert mask)")
        written.append(path)
    return written
