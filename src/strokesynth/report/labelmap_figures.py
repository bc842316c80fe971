"""Figures of a label-map augmentation run (Platscher, Zopes & Federau), drawn from the arrays the
run saved in ``figures/figure_data.npz`` (:func:`strokesynth.recipes.labelmap_augmentation.figure_data`):

- ``figures/translations.png``: a held-out stroke subject's label map, its real DWI and each
  translation model's synthetic DWI (one slice);
- ``figures/lesion_gan.png``: lesion GAN samples beside training masks (maximum projection along z);
- ``figures/histograms.png``: brain intensity histograms of clinical, normal and synthetic DWIs
  (the paper's Fig. 5 analog).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from strokesynth.plots import _save, panel_row
from strokesynth.recipes.labelmap_augmentation import FIGURES


def draw_figures(run_path: str | os.PathLike) -> dict[str, str]:
    """Draw the three figures from ``figures/figure_data.npz`` (and its ``.json`` of names); returns
    ``{key: relative path}`` of those drawn (none when the run saved no figure data)."""
    run = Path(run_path)
    data_path, meta_path = run / "figures" / "figure_data.npz", run / "figures" / "figure_data.json"
    if not data_path.is_file() or not meta_path.is_file():
        return {}
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    with np.load(data_path) as d:
        arrays = {k: d[k] for k in d.files}
    t = meta["translations"]
    panels = [(name, arrays[f"translation_{i}"], tuple(vr), cmap)
              for i, (name, vr, cmap) in enumerate(zip(t["names"], t["ranges"], t["cmaps"], strict=True))]
    panel_row(panels, run / FIGURES["translations"], label=arrays["translation_label"], title=t["title"])
    g = meta["lesion_gan"]
    panel_row([(name, arrays[f"gan_{i}"], (0, 1), "magma") for i, name in enumerate(g["names"])],
              run / FIGURES["lesion_gan"], title=g["title"])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    centres = arrays["hist_centres"]
    for i, (name, style) in enumerate(zip(meta["histograms"]["names"], meta["histograms"]["styles"], strict=True)):
        ax.plot(centres, arrays[f"hist_{i}"], style, label=name)
    ax.set_xlabel("DWI, brain voxels (scaled: 99.5th percentile = 1)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title("Intensity histograms (the paper's Fig. 5 analog)")
    _save(fig, run / FIGURES["histograms"])
    return dict(FIGURES)
