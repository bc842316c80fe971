"""Figures for reports: montages of input channels with the lesion outline."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from strokesynth.io.atomic import atomic_file


def channel_montage(
    image: np.ndarray,
    names: Sequence[str],
    path: str | os.PathLike,
    *,
    label: np.ndarray | None = None,
    title: str = "",
) -> None:
    """Save a row of panels, one per channel of ``image`` (C, H, W), with the label contour.

    Panels show array axis 0 (x) horizontally, as radiological viewers show axial slices
    after a transpose; ``label`` (H, W) is drawn as a red contour on every panel.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = image.shape[0]
    fig, axes = plt.subplots(1, c, figsize=(2.4 * c, 2.6), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(image[i].T, cmap="gray", origin="lower", vmin=0.0, vmax=max(1.0, float(image[i].max())))
        if label is not None and np.any(label):
            ax.contour(label.T, levels=[0.5], colors="red", linewidths=0.8, origin="lower")
        ax.set_title(names[i] if i < len(names) else f"ch{i}", fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
