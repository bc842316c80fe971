"""Figures of the label-map augmentation recipe: label map -> synthetic DWI per model, lesion GAN
samples, and the intensity histograms of clinical, normal and synthetic DWIs (the paper's Fig. 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from strokesynth.data.case import Case
from strokesynth.data.mr_volumes import MRVolume
from strokesynth.plots import _save, panel_row


def _slice_of(v: MRVolume) -> int:
    return int(np.argmax(v.lesion.sum((0, 1)))) if v.lesion.any() else v.classes.shape[2] // 2


def recipe_figures(run: Path, vols: dict[str, MRVolume], train_s: list[str], test_s: list[str], train_n: list[str],
                   synth: dict[str, list[Case]], gan: Any, models: dict[str, Any], table: Any, seed: int) -> dict[str, str]:
    """Write ``figures/translations.png``, ``lesion_gan.png`` and ``histograms.png``; returns their paths."""
    from strokesynth.engine.checkpoint import load_system
    from strokesynth.systems.labelmap import translate_volume

    fig_dir = run / "figures"
    out: dict[str, str] = {}
    v = vols[test_s[0]]
    z = _slice_of(v)
    panels = [("label map (test subject)", v.classes[:, :, z], (0, table.n_classes - 1), "tab20"),
              ("real DWI", (v.image[:, :, z] + 1) / 2, (0, 1), "gray")]  # type: ignore[index]
    torch.manual_seed(seed)
    for key in models:
        system = load_system(run / "translation" / key / "best.pt")
        fake = translate_volume(system, v.classes, table.n_classes)
        panels.append((f"{key}", (fake[:, :, z] + 1) / 2, (0, 1), "gray"))
    panel_row(panels, fig_dir / "translations.png", label=v.lesion[:, :, z],
              title=f"label map -> DWI on a held-out stroke subject ({v.case_id}, z={z}); red: lesion")
    out["translations"] = "figures/translations.png"
    samples = gan.sample(6, seed=seed + 5).numpy()
    real = [vols[i].lesion for i in train_s[:3]]
    gp = [(f"generated {k + 1}", s.max(2).astype(float), (0, 1), "magma") for k, s in enumerate(samples)]
    gp += [(f"training {vols[i].case_id}", m.max(2).astype(float), (0, 1), "magma") for i, m in zip(train_s, real,
                                                                                                   strict=False)]
    panel_row(gp, fig_dir / "lesion_gan.png", title="lesion GAN samples and training masks (projection along z)")
    out["lesion_gan"] = "figures/lesion_gan.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    bins = np.linspace(0, 1, 51)

    def hist(values: np.ndarray, name: str, style: str) -> None:
        h, _ = np.histogram(values, bins, density=True)
        ax.plot((bins[1:] + bins[:-1]) / 2, h, style, label=name)

    hist(np.concatenate([(vols[i].image[vols[i].brain] + 1) / 2 for i in train_s]), "clinical (stroke)", "-")  # type: ignore[index]
    hist(np.concatenate([(vols[i].image[vols[i].brain] + 1) / 2 for i in train_n]), "normal", "--")  # type: ignore[index]
    for key, cases in synth.items():
        vals = np.concatenate([np.asarray(c["dwi"].array)[np.asarray(c["dwi"].array) > 0] for c in cases[:20]])
        hist(vals, f"synthetic ({key})", ":")
    ax.set_xlabel("DWI, brain voxels (scaled: 99.5th percentile = 1)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title("Intensity histograms (the paper's Fig. 5 analog)")
    _save(fig, fig_dir / "histograms.png")
    out["histograms"] = "figures/histograms.png"
    return out
