"""The 3D lesion-mask WGAN of Platscher et al.: a generator of binary stroke-lesion masks and its critic.

:class:`LesionGenerator`: latent ``z`` (128) -> dense layer -> a 4x4x4 map of ``channels[0]``
features -> blocks of (x2 nearest upsampling on the axes still below the target, 3x3x3 conv,
instance norm, LeakyReLU 0.2) -> a 3x3x3 conv to one channel, tanh. Anisotropic grids (128x128x32)
stop upsampling an axis once it has reached its size. Thresholding the output at 0 (0.5 in [0, 1]
units) gives the binary mask.

:class:`LesionCritic`: strided 4x4x4 convs (stride 2 on axes above 4 voxels), LeakyReLU 0.2, no
normalisation (WGAN-GP penalises per-sample gradients, which batch statistics would couple),
then a linear layer to one unbounded score per sample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (instance, batch, none)")


def _steps(shape: tuple[int, int, int]) -> int:
    for s in shape:
        if s < 4 or s & (s - 1):
            raise ValueError(f"lesion GAN grid sides must be powers of two of at least 4, got {shape}")
    return int(max(math.log2(s // 4) for s in shape))


class LesionGenerator(nn.Module):
    """``z (B, latent)`` -> mask logits-in-[-1, 1] ``(B, 1, X, Y, Z)`` (see the module docstring).

    Args:
        shape: the data grid (X, Y, Z), each a power of two >= 4.
        channels: widths of the dense map and of each upsampling block (the last one repeats
            when the grid needs more blocks).
        latent: length of ``z``.
        norm: ``instance`` (the paper), ``batch`` or ``none`` after each block's conv. Instance
            norm removes each sample's per-channel mean, i.e. the global level through which ``z``
            most directly sets a mask's volume.
    """

    def __init__(self, shape: tuple[int, int, int], channels: tuple[int, ...] | list[int] = (128, 64, 32, 16, 8),
                 latent: int = 128, norm: str = "instance") -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.latent = int(latent)
        n = _steps(self.shape)  # type: ignore[arg-type]
        widths = [int(c) for c in channels]
        widths += [widths[-1]] * max(0, n + 1 - len(widths))
        self.c0 = widths[0]
        self.fc = nn.Linear(self.latent, 64 * self.c0)
        self.factors: list[tuple[int, int, int]] = []
        size = [4, 4, 4]
        blocks = []
        for i in range(n):
            f = tuple(2 if size[a] < self.shape[a] else 1 for a in range(3))
            size = [s * k for s, k in zip(size, f, strict=True)]
            self.factors.append(f)  # type: ignore[arg-type]
            blocks.append(nn.Sequential(nn.Conv3d(widths[i], widths[i + 1], 3, padding=1),
                                        _norm(norm, widths[i + 1]), nn.LeakyReLU(0.2, True)))
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Conv3d(widths[n], 1, 3, padding=1)
        self.empty_bias = -2.0  # re-applied by ``reset_output``: start from (nearly) empty masks

    def reset_output(self) -> LesionGenerator:
        """Set the last conv's bias to ``empty_bias`` (tanh(-2) = -0.96): a new generator draws
        nearly empty masks, as most of a grid is background, instead of filling the grid."""
        with torch.no_grad():
            self.out.bias.fill_(self.empty_bias)
        return self

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, self.c0, 4, 4, 4)
        for f, block in zip(self.factors, self.blocks, strict=True):
            x = block(F.interpolate(x, scale_factor=f, mode="nearest"))
        return torch.tanh(self.out(x))

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, device: str = "cpu") -> torch.Tensor:
        """``n`` binary masks ``(n, X, Y, Z)`` (bool), from ``z ~ N(0, I)`` drawn with ``generator``."""
        z = torch.randn(n, self.latent, generator=generator).to(device)
        return (self.eval()(z)[:, 0] > 0).cpu()


class LesionCritic(nn.Module):
    """``(B, 1, X, Y, Z)`` masks in [-1, 1] -> ``(B, 1)`` Wasserstein scores.

    Args:
        shape: the data grid (X, Y, Z).
        channels: widths of the strided convs (each halves the axes above 4 voxels).
        minibatch_std: append the batch's feature standard deviation before the linear layer
            (against mode collapse; not in Platscher et al.). It couples the samples of a batch,
            which the per-sample gradient penalty tolerates in practice (ProGAN uses both).
    """

    def __init__(self, shape: tuple[int, int, int], channels: tuple[int, ...] | list[int] = (16, 32, 64, 128),
                 minibatch_std: bool = False) -> None:
        super().__init__()
        size = [int(s) for s in shape]
        _steps(tuple(size))  # type: ignore[arg-type]
        layers: list[nn.Module] = []
        prev = 1
        for c in channels:
            stride = tuple(2 if s > 4 else 1 for s in size)
            kernel = tuple(4 if k == 2 else 3 for k in stride)
            layers += [nn.Conv3d(prev, int(c), kernel, stride=stride, padding=1), nn.LeakyReLU(0.2, True)]
            size = [s // k for s, k in zip(size, stride, strict=True)]
            prev = int(c)
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            n = self.features(torch.zeros(1, 1, *shape)).numel()
        self.minibatch_std = bool(minibatch_std)
        self.head = nn.Linear(n + int(self.minibatch_std), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).flatten(1)
        if self.minibatch_std:
            # one feature: the batch's mean feature standard deviation (Karras et al.), so a critic can
            # tell a batch of near-identical generated masks from varied real ones
            sd = f.std(0, unbiased=False).mean() if f.shape[0] > 1 else f.new_zeros(())
            f = torch.cat([f, sd.expand(f.shape[0], 1)], 1)
        return self.head(f)
