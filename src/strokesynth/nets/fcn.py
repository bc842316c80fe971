"""FCN-8s (Long, Shelhamer & Darrell, 2015) for slices, with a VGG-style encoder of any width.

One of the segmentation networks the pseudo-DWI paper's Table 3 compares SLNet with. The encoder
has one block per entry of ``channels`` (two 3x3 conv + batch norm + ReLU, three from the third
block on, as VGG-16), each followed by 2x2 max-pooling, so block ``i`` has stride ``2 ** (i + 1)``.
A 1x1 conv scores the last three pooled outputs (strides 8, 16, 32 with five blocks); the
coarsest score is up-sampled x2 by a learned transposed conv (initialised to bilinear, as in the
reference; a plain ``nn.Parameter``, so the toolkit's weight init leaves it bilinear) and added to
the next, twice, and the stride-8 sum is up-sampled bilinearly to the input. VGG's fully
connected fc6/fc7 (a 7x7 and a 1x1 conv of 4096 in FCN) are here a 3x3 and a 1x1 conv of
``fc_channels`` (default twice the last block): the encoder takes the widths of the table's
U-Nets (64..1024), and a 7x7x4096 fc6 on 1024 features would alone hold 205 M parameters.

Shapes: input ``(B, in_channels, H, W)`` -> logits ``(B, num_classes, H, W)``; H and W divisible
by ``2 ** len(channels)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _bilinear_kernel(channels: int, size: int = 4) -> torch.Tensor:
    """The ``(C, C, size, size)`` weight of a transposed conv that up-samples each channel bilinearly."""
    f = (size + 1) // 2
    centre = f - 1 if size % 2 == 1 else f - 0.5
    r = torch.arange(size, dtype=torch.float32)
    k1 = 1 - (r - centre).abs() / f
    w = torch.zeros(channels, channels, size, size)
    w[range(channels), range(channels)] = k1[:, None] * k1[None, :]
    return w


class BilinearUp2(nn.Module):
    """A learned x2 transposed conv ``(B, C, h, w) -> (B, C, 2h, 2w)`` that starts bilinear."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(_bilinear_kernel(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, self.weight, stride=2, padding=1)


class FCN8s(nn.Module):
    """FCN-8s with ``channels`` per encoder block (VGG-16: 64, 128, 256, 512, 512) and fc6/fc7 of
    ``fc_channels`` (default twice the last block). With fewer than three blocks it keeps the skips
    that exist (two blocks: FCN-16s; one: FCN-32s), so small test configs still build."""

    def __init__(self, in_channels: int, num_classes: int, channels: Sequence[int], fc_channels: int | None = None
                 ) -> None:
        super().__init__()
        ch = list(channels)
        if not ch:
            raise ValueError("FCN-8s needs at least one encoder block")
        blocks, cin = [], in_channels
        for i, c in enumerate(ch):
            layers: list[nn.Module] = []
            for _ in range(2 if i < 2 else 3):
                layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                cin = c
            blocks.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        self.blocks = nn.ModuleList(blocks)
        fc = fc_channels or 2 * ch[-1]
        self.fc = nn.Sequential(nn.Conv2d(ch[-1], fc, 3, padding=1), nn.ReLU(inplace=True), nn.Dropout2d(0.5),
                                nn.Conv2d(fc, fc, 1), nn.ReLU(inplace=True), nn.Dropout2d(0.5))
        # skips from the third- and second-last blocks (pool3 and pool4 of VGG-16), fine to coarse; registered
        # before the fc score so that weight draws follow the layer order of the reference
        self.score_skips = nn.ModuleList([nn.Conv2d(ch[-1 - j], num_classes, 1)
                                          for j in range(min(2, len(ch) - 1), 0, -1)])
        self.score_fc = nn.Conv2d(fc, num_classes, 1)
        self.up = nn.ModuleList([BilinearUp2(num_classes) for _ in self.score_skips])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        s = self.score_fc(self.fc(x))  # stride 2**n
        for i, (up, score) in enumerate(zip(self.up, reversed(self.score_skips), strict=True)):
            s = up(s) + score(feats[-2 - i])  # stride 2**(n-1-i): 8 after both skips with five blocks
        return F.interpolate(s, size=size, mode="bilinear", align_corners=False)
