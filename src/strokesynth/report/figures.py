"""Figures for reports: montages of input channels with the lesion outline."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from strokesynth.io.atomic import atomic_file


def panel_row(
    panels: Sequence[tuple[str, np.ndarray, tuple[float, float], str]],
    path: str | os.PathLike,
    *,
    label: np.ndarray | None = None,
    title: str = "",
) -> None:
    """Save a row of 2D panels ``(name, image (H, W), (vmin, vmax), colormap)`` with a label contour.

    Panels show array axis 0 (x) horizontally, as radiological viewers show axial slices
    after a transpose; ``label`` (H, W) is drawn as a red contour on every panel.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = len(panels)
    fig, axes = plt.subplots(1, c, figsize=(2.4 * c, 2.6), squeeze=False)
    for ax, (name, img, (vmin, vmax), cmap) in zip(axes[0], panels, strict=False):
        ax.imshow(img.T, cmap=cmap, origin="lower", vmin=vmin, vmax=vmax)
        if label is not None and np.any(label):
            ax.contour(label.T, levels=[0.5], colors="red", linewidths=0.8, origin="lower")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def channel_montage(
    image: np.ndarray,
    names: Sequence[str],
    path: str | os.PathLike,
    *,
    label: np.ndarray | None = None,
    title: str = "",
) -> None:
    """Save a row of panels, one per channel of normalised ``image`` (C, H, W), see :func:`panel_row`."""
    panels = [(names[i] if i < len(names) else f"ch{i}", image[i], (0.0, max(1.0, float(image[i].max()))), "gray")
              for i in range(image.shape[0])]
    panel_row(panels, path, label=label, title=title)
