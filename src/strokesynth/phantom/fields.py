"""Smooth random fields and sampling of gridded maps at arbitrary points (trilinear, torch)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage


def sample_grid(data: np.ndarray, affine: np.ndarray, points: np.ndarray, *, nearest: bool = False) -> np.ndarray:
    """Values of ``data`` ``(C, X, Y, Z)`` (voxel -> mm by ``affine``) at ``points`` ``(N, 3)`` mm.

    Trilinear (or nearest) interpolation; points outside the grid take the nearest edge value.

    Returns:
        ``(C, N)`` float32.
    """
    inv = np.linalg.inv(affine)
    ijk = points @ inv[:3, :3].T + inv[:3, 3]
    shape = np.array(data.shape[1:], dtype=np.float64)
    norm = 2 * ijk / (shape - 1) - 1  # align_corners=True convention
    grid = torch.from_numpy(norm[:, ::-1].astype(np.float32).copy()).view(1, 1, 1, -1, 3)
    src = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))[None]
    out = F.grid_sample(src, grid, mode="nearest" if nearest else "bilinear", padding_mode="border",
                        align_corners=True)[0, :, 0, 0]
    return out.numpy()


class RandomField:
    """Gaussian random fields with unit SD, smooth over ``corr_mm``, defined over a box in mm.

    Args:
        rng: the generator to draw from.
        channels: number of independent fields.
        corr_mm: Gaussian correlation length (sigma, mm).
        box: ((x0, x1), (y0, y1), (z0, z1)) mm covered; points outside see the edge value.
    """

    def __init__(self, rng: np.random.Generator, channels: int, corr_mm: float,
                 box: tuple[tuple[float, float], ...] = ((-110, 110), (-140, 110), (-90, 110))) -> None:
        step = max(corr_mm / 2.5, 1.0)
        shape = [int(np.ceil((hi - lo) / step)) + 1 for lo, hi in box]
        raw = rng.standard_normal((channels, *shape)).astype(np.float32)
        sm = np.stack([ndimage.gaussian_filter(c, corr_mm / step, mode="wrap") for c in raw])
        sm /= sm.reshape(channels, -1).std(axis=1).reshape(channels, 1, 1, 1) + 1e-12
        self.data = sm.astype(np.float32)
        self.affine = np.diag([step, step, step, 1.0])
        self.affine[:3, 3] = [lo for lo, _ in box]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """``(C, N)`` field values at ``points`` ``(N, 3)`` mm (clamped to the box)."""
        return sample_grid(self.data, self.affine, points)
