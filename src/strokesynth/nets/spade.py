"""SPADE generator (Park et al.) for label map -> image synthesis, as Platscher et al. configure it.

A latent vector ``z`` (128) goes through a dense layer to a 4x4 map of ``channels[0]`` features;
residual SPADE blocks (``channels``, 128-64-32-16-8 for 128 px) each followed by a 2x nearest
upsampling bring it to the image size; LeakyReLU, a 3x3 conv to one channel and tanh finish.
Every normalisation inside a block is SPADE: a parameter-free instance norm whose scale and
shift are predicted per pixel from the (one-hot) label map, so the anatomy enters at every
resolution.

The normalisation layer is MONAI's :class:`monai.networks.blocks.SPADE` (instance norm, shared
3x3 conv + ReLU, then 3x3 convs for gamma and beta, label map resized by nearest
interpolation), which is Park et al.'s layer. What MONAI does not have is the generator around it
(its ``SPADENet`` is a VAE-GAN with an image encoder): the residual block (SPADE, LeakyReLU 0.2,
3x3 conv, twice, with a learned SPADE + 1x1 conv shortcut when the width changes) and the
dense-latent stem are written here. Spectral normalisation of the block convs (Park et al.) is
left out, as the other translation models here have none, so the three differ in architecture
only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.blocks.spade_norm import SPADE
from torch import nn


class SPADEResBlock(nn.Module):
    """``shortcut(x) + conv(act(SPADE(conv(act(SPADE(x, m)), m))))``; ``(B, cin, H, W)`` -> ``(B, cout, H, W)``."""

    def __init__(self, label_channels: int, cin: int, cout: int, hidden: int = 64) -> None:
        super().__init__()
        mid = min(cin, cout)
        self.norm_0 = SPADE(label_channels, cin, 3, spatial_dims=2, hidden_channels=hidden, norm="INSTANCE")
        self.conv_0 = nn.Conv2d(cin, mid, 3, padding=1)
        self.norm_1 = SPADE(label_channels, mid, 3, spatial_dims=2, hidden_channels=hidden, norm="INSTANCE")
        self.conv_1 = nn.Conv2d(mid, cout, 3, padding=1)
        self.learned_shortcut = cin != cout
        if self.learned_shortcut:
            self.norm_s = SPADE(label_channels, cin, 3, spatial_dims=2, hidden_channels=hidden, norm="INSTANCE")
            self.conv_s = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        short = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return short + dx


class SPADEGenerator(nn.Module):
    """Latent + label map -> image (see the module docstring).

    Args:
        label_channels: classes of the one-hot label map.
        out_channels: image channels (1).
        channels: widths of the residual SPADE blocks; the output size is ``4 * 2**len(channels)``
            (128-64-32-16-8 -> 128 px).
        latent: length of ``z`` (128).
        hidden: hidden features of each SPADE layer's shared conv (64 in MONAI and Park et al.;
            tiny configs use fewer).

    Shapes: ``(B, label_channels, S, S)`` (+ optional ``z`` ``(B, latent)``, drawn from N(0, I) with
    torch's global generator when omitted) -> ``(B, out_channels, S, S)`` in [-1, 1].
    """

    def __init__(self, label_channels: int, out_channels: int = 1, channels: tuple[int, ...] | list[int] = (128, 64, 32, 16, 8),
                 latent: int = 128, hidden: int = 64) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        self.latent, self.c0, self.label_channels = int(latent), channels[0], int(label_channels)
        self.size = 4 * 2 ** len(channels)
        self.fc = nn.Linear(self.latent, 16 * self.c0)
        ins = [channels[0], *channels[:-1]]
        self.blocks = nn.ModuleList([SPADEResBlock(label_channels, a, b, hidden) for a, b in zip(ins, channels, strict=True)])
        self.out = nn.Conv2d(channels[-1], out_channels, 3, padding=1)

    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if seg.shape[-1] != self.size or seg.shape[-2] != self.size:
            raise ValueError(f"SPADEGenerator with {len(self.blocks)} blocks makes {self.size} px images, "
                             f"got a {tuple(seg.shape[-2:])} label map")
        if z is None:
            z = torch.randn(seg.shape[0], self.latent, device=seg.device, dtype=seg.dtype)
        x = self.fc(z).view(-1, self.c0, 4, 4)
        for block in self.blocks:
            x = F.interpolate(block(x, seg), scale_factor=2, mode="nearest")
        return torch.tanh(self.out(F.leaky_relu(x, 0.2)))
