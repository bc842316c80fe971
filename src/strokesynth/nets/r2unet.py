"""R2U-Net (Alom et al., 2018): the U-Net with recurrent residual convolutional units.

One of the segmentation networks the pseudo-DWI paper's Table 3 compares SLNet with. Each level
is a recurrent residual block: a 1x1 conv to the level's width, then two recurrent
convolutional layers (RCL, ``t`` = 2 recurrences with shared weights: ``h = f(x); h = f(x + h)``,
``f`` = 3x3 conv + batch norm + ReLU), added to the 1x1 conv's output. Max-pooling down,
up-sampling + 3x3 conv up, skip connections by concatenation, a 1x1 output conv.

Shapes: input ``(B, in_channels, H, W)`` -> logits ``(B, num_classes, H, W)``; H and W divisible
by ``2 ** (len(channels) - 1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _cbr(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class RecurrentConv(nn.Module):
    """An RCL: ``h = f(x)``, then ``t`` times ``h = f(x + h)`` with the same ``f``."""

    def __init__(self, channels: int, t: int = 2) -> None:
        super().__init__()
        self.t = t
        self.f = _cbr(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.f(x)
        for _ in range(self.t):
            h = self.f(x + h)
        return h


class RecurrentResidualBlock(nn.Module):
    """1x1 conv to ``cout``, two RCLs, and the residual sum of the two paths."""

    def __init__(self, cin: int, cout: int, t: int = 2) -> None:
        super().__init__()
        self.entry = nn.Conv2d(cin, cout, 1)
        self.body = nn.Sequential(RecurrentConv(cout, t), RecurrentConv(cout, t))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.entry(x)
        return x + self.body(x)


class R2UNet(nn.Module):
    """R2U-Net with ``channels`` per level (64..1024 in Alom et al.) and ``t`` recurrences."""

    def __init__(self, in_channels: int, num_classes: int, channels: Sequence[int], t: int = 2) -> None:
        super().__init__()
        ch = list(channels)
        self.down = nn.ModuleList([RecurrentResidualBlock(a, b, t) for a, b in zip([in_channels, *ch[:-1]], ch, strict=True)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.Sequential(nn.Upsample(scale_factor=2), _cbr(b, a))
                                 for a, b in zip(ch[:-1], ch[1:], strict=True)])
        self.fuse = nn.ModuleList([RecurrentResidualBlock(2 * a, a, t) for a in ch[:-1]])
        self.head = nn.Conv2d(ch[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(len(self.up))):
            x = self.fuse[i](torch.cat([skips.pop(), self.up[i](x)], 1))
        return self.head(x)
