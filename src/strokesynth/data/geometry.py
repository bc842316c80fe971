"""Fitting a case's in-plane grid to a network's input size, and putting predictions back.

Two modes:

- ``pad_crop``: centre-pad (with 0, the normalised background) or centre-crop each in-plane
  axis to the target. Lossless where it pads; predictions outside a crop are filled with 0.
- ``resample``: bilinear resize to the target (nearest for labels) and back. Changes the pixel
  size; use it when in-plane matrices differ a lot between scanners.

A :class:`PlaneGeometry` records what was done, so ``to_original`` inverts ``to_target``
exactly on the kept region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

Mode = Literal["pad_crop", "resample"]


@dataclass(frozen=True)
class PlaneGeometry:
    """How an (X, Y) plane maps onto a (H, W) target.

    Attributes:
        original: (X, Y) of the case.
        target: (H, W) given to the network.
        mode: ``pad_crop`` or ``resample``.
    """

    original: tuple[int, int]
    target: tuple[int, int]
    mode: Mode = "pad_crop"

    def _offsets(self) -> list[tuple[int, int]]:
        """Per axis (pad_before, crop_before): one of them is 0."""
        out = []
        for n, t in zip(self.original, self.target, strict=True):
            if t >= n:
                out.append(((t - n) // 2, 0))
            else:
                out.append((0, (n - t) // 2))
        return out

    def to_target(self, x: torch.Tensor, *, label: bool = False) -> torch.Tensor:
        """(C, X, Y[, Z]) -> (C, H, W[, Z])."""
        if self.original == self.target:
            return x
        if self.mode == "resample":
            return _resize(x, self.target, label)
        (pa, ca), (pb, cb) = self._offsets()
        tx, ty = self.target
        x = x[:, ca : ca + min(tx, x.shape[1]), cb : cb + min(ty, x.shape[2])]
        out = x.new_zeros((x.shape[0], tx, ty, *x.shape[3:]))
        out[:, pa : pa + x.shape[1], pb : pb + x.shape[2]] = x
        return out

    def to_original(self, y: torch.Tensor, *, label: bool = False) -> torch.Tensor:
        """(C, H, W[, Z]) -> (C, X, Y[, Z]); the inverse of :meth:`to_target`."""
        if self.original == self.target:
            return y
        if self.mode == "resample":
            return _resize(y, self.original, label)
        (pa, ca), (pb, cb) = self._offsets()
        nx, ny = self.original
        y = y[:, pa : pa + min(nx, self.target[0]), pb : pb + min(ny, self.target[1])]
        out = y.new_zeros((y.shape[0], nx, ny, *y.shape[3:]))
        out[:, ca : ca + y.shape[1], cb : cb + y.shape[2]] = y
        return out


def _resize(x: torch.Tensor, size: tuple[int, int], label: bool) -> torch.Tensor:
    """Resize the first two spatial axes of (C, X, Y[, Z]); Z is carried along."""
    extra = x.shape[3:]
    c = x.shape[0]
    if extra:
        z = extra[0]
        planes = x.permute(3, 0, 1, 2).reshape(z, c, *x.shape[1:3])
    else:
        planes = x[None]
    dtype = planes.dtype
    mode = "nearest" if label else "bilinear"
    kwargs = {} if label else {"align_corners": False}
    out = F.interpolate(planes.float(), size=size, mode=mode, **kwargs).to(dtype)
    if extra:
        return out.reshape(z, c, *size).permute(1, 2, 3, 0).contiguous()
    return out[0]
