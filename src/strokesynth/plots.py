"""Figures for reports: channel montages, contour overlays and training curves (PNG, written atomically)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from strokesynth._fs import atomic_file

#: Titles and colour-bar labels in points: at the report's width (about 1180 px) a figure of
#: four 3-inch panels is shown at about 100 %, so 11 pt stays about 15 px on screen.
TITLE_PT, LABEL_PT = 11, 9
MAX_COLS = 4


def panel_row(
    panels: Sequence[tuple],
    path: str | os.PathLike,
    *,
    label: np.ndarray | None = None,
    title: str = "",
) -> None:
    """Save 2D panels ``(name, image (H, W), (vmin, vmax), colormap[, unit])`` with a label contour.

    Panels show array axis 0 (x) horizontally, as radiological viewers show axial slices
    after a transpose; ``label`` (H, W) is drawn as a red contour on every panel. A panel with
    a ``unit`` (e.g. ``"ml/100 g/min"``) gets a colour bar labelled with it; every quantitative
    map should have one. More than :data:`MAX_COLS` panels wrap onto further rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = len(panels)
    rows = -(-c // MAX_COLS)
    cols = -(-c // rows)  # balanced rows: 6 panels as 2 x 3, not 4 + 2
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 3.1 * rows + (0.4 if title else 0)), squeeze=False)
    for ax in axes.flat[c:]:
        ax.axis("off")
    for ax, panel in zip(axes.flat, panels, strict=False):
        name, img, (vmin, vmax), cmap = panel[:4]
        unit = panel[4] if len(panel) > 4 else None
        shown = ax.imshow(img.T, cmap=cmap, origin="lower", vmin=vmin, vmax=vmax)
        if label is not None and np.any(label):
            ax.contour(label.T, levels=[0.5], colors="red", linewidths=0.8, origin="lower")
        ax.set_title(name, fontsize=TITLE_PT)
        ax.axis("off")
        if unit is not None:
            bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
            bar.set_label(unit, fontsize=LABEL_PT)
            bar.ax.tick_params(labelsize=LABEL_PT - 1)
    if title:
        fig.suptitle(title, fontsize=TITLE_PT + 1)
    _save(fig, path)


def channel_montage(
    image: np.ndarray,
    names: Sequence[str],
    path: str | os.PathLike,
    *,
    label: np.ndarray | None = None,
    title: str = "",
) -> None:
    """Save a row of panels, one per channel of normalised ``image`` (C, H, W), see :func:`panel_row`."""
    panels = [(names[i] if i < len(names) else f"ch{i}", image[i], (0.0, max(1.0, float(image[i].max()))), "gray",
               "normalised")
              for i in range(image.shape[0])]
    panel_row(panels, path, label=label, title=title)


def overlay_row(
    panels: Sequence[tuple[str, np.ndarray, Sequence[tuple[np.ndarray, str]]]],
    path: str | os.PathLike,
    *,
    title: str = "",
) -> None:
    """Save a row of grey 2D images ``(name, image (H, W) in [0, 1], [(mask (H, W), colour), ...])``
    with each mask drawn as a contour in its colour (same orientation as :func:`panel_row`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels), 3.4), squeeze=False)
    for ax, (name, img, masks) in zip(axes[0], panels, strict=False):
        ax.imshow(img.T, cmap="gray", origin="lower", vmin=0.0, vmax=1.0)
        for mask, colour in masks:
            if np.any(mask):
                ax.contour(np.asarray(mask, float).T, levels=[0.5], colors=colour, linewidths=1.0, origin="lower")
        ax.set_title(name, fontsize=TITLE_PT)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=TITLE_PT + 1)
    _save(fig, path)


def curves_figure(
    plots: Sequence[tuple[str, str, Sequence[tuple[str, Sequence[float], Sequence[float], str]]]],
    path: str | os.PathLike,
) -> None:
    """Save side-by-side line plots: ``(title, y label, [(legend, x, y, style), ...])`` each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(plots), figsize=(5.2 * len(plots), 3.4), squeeze=False)
    for ax, (name, ylabel, lines) in zip(axes[0], plots, strict=False):
        for legend, x, y, style in lines:
            ax.plot(x, y, style, label=legend, linewidth=1.2)
        ax.set_title(name, fontsize=TITLE_PT)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def input_function_figure(aif: Any, dt: float, path: str | os.PathLike, *, vof: Any = None, title: str = "") -> None:
    """Save an arterial input function against time (frames every ``dt`` s) with its arrival
    (half-height of the rise) and peak marked, and the venous output function when one scaled it.

    ``aif``, ``vof``: :class:`strokesynth.perfusion.aif.InputFunction` (``curve`` ``(T,)`` in HU over
    the baseline, ``arrival_time`` and ``peak_time`` in s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arrival_s, peak_s = aif.arrival_time, aif.peak_time
    t = np.arange(len(aif.curve)) * dt
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    ax.plot(t, aif.curve, "o-", color="tab:red", markersize=3, linewidth=1.2, label="AIF")
    if vof is not None:
        ax.plot(t, vof.curve, "s-", color="tab:blue", markersize=2, linewidth=1.0, label="VOF")
    if arrival_s is not None:
        ax.axvline(arrival_s, color="tab:red", linestyle="--", linewidth=1.0, label=f"AIF arrival {arrival_s:.2f} s")
    ax.axvline(peak_s, color="tab:red", linestyle=":", linewidth=1.0, label=f"AIF peak {peak_s:.2f} s")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("enhancement (HU)")
    ax.set_title(title or "arterial input function", fontsize=TITLE_PT)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)


def _save(fig, path: str | os.PathLike) -> None:
    """Lay out, write atomically as a 100 dpi PNG (zlib level 1: lossless, about half the encoding
    time of the default level 6 for a slightly larger file), and free the figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png", pil_kwargs={"compress_level": 1})
    plt.close(fig)
