"""Φc, the context encoder of the pseudo-DWI paper's high-level synthesis loss ℓ_h.

Five 3x3 stride-2 convolutions with leaky ReLU, an adaptive average pool to 8x8 after the third
(so any input size gives the same vector) and a global one after the fifth: an image
``(B, 1, H, W)`` becomes a 16-vector ``(B, 16)``. A linear ``head`` on that vector predicts
whether the slice holds a lesion; it is how Φc is trained (see
:mod:`strokesynth.systems.pseudo_dwi`).
"""

from __future__ import annotations

import torch
from torch import nn


class ContextEncoder(nn.Module):
    """``(B, in_channels, H, W)`` -> ``(B, out_features)``; ``classify`` -> lesion logit ``(B,)``."""

    def __init__(self, in_channels: int = 1, channels: tuple[int, ...] = (16, 32, 64, 64), out_features: int = 16
                 ) -> None:
        super().__init__()
        widths = [in_channels, *channels, out_features]
        layers: list[nn.Module] = []
        for i in range(5):
            layers += [nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            if i == 2:
                layers.append(nn.AdaptiveAvgPool2d(8))
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(out_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self(x))[:, 0]
