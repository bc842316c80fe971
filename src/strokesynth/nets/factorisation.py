"""Networks of pseudo-healthy synthesis by pathology factorisation (Xia, Chartsias & Tsaftaris).

From the paper's appendix, with the widths as arguments:

- :class:`FactorGenerator` - G (pathological -> pseudo-healthy, 1 input channel) and R
  (pseudo-healthy + pathology mask -> pathological, 2 input channels): 7x7 conv ``ngf``, two
  stride-2 3x3 convs (2 ``ngf``, 4 ``ngf``), ``n_blocks`` residual blocks, two (x2 nearest
  upsampling + 3x3 conv) stages (2 ``ngf``, ``ngf``), a 3x3 conv and a sigmoid; instance norm
  and ReLU, LeakyReLU(0.2) inside the residual blocks (``ngf`` = 32, 6 blocks in the paper).
- :class:`ResidualUNet` - S, the segmentor: a U-Net whose blocks are two 3x3 convs with a 1x1
  residual shortcut, LeakyReLU(0.2), batch norm, max-pool down and x2 upsampling + conv up,
  sigmoid output.
- :class:`PatchCritic` - D_x (images) and D_m (masks): 4x4 stride-2 convs (32-128-256-512 in
  the paper), each followed by instance norm and LeakyReLU(0.2), then a 4x4 stride-1 conv
  ("same" padding) and a sigmoid: a map of patch scores in [0, 1] of 1/16 of the input
  (13x10 for the paper's 208x160 slices), scored with least squares.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from strokesynth.nets.pix2pix import ResnetBlock


def _in(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False)


class FactorGenerator(nn.Module):
    """G or R of the factorisation model (see the module docstring).

    Args:
        in_channels: 1 for G (an image), 2 for R (an image and a pathology mask).
        ngf: features of the first conv (32).
        n_blocks: residual blocks at 1/4 resolution (6).

    Shapes: ``(B, in_channels, H, W)`` -> ``(B, 1, H, W)`` in [0, 1]; H, W divisible by 4.
    """

    def __init__(self, in_channels: int = 1, ngf: int = 32, n_blocks: int = 6) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), _in(ngf), nn.ReLU(True)]
        for c in (ngf, 2 * ngf):
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), _in(2 * c), nn.ReLU(True)]
        layers += [ResnetBlock(4 * ngf, "instance", dropout=0.0, negative_slope=0.2) for _ in range(n_blocks)]
        for c in (4 * ngf, 2 * ngf):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c // 2, 3, padding=1),
                       _in(c // 2), nn.ReLU(True)]
        layers += [nn.Conv2d(ngf, 1, 3, padding=1), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"FactorGenerator needs H and W divisible by 4, got {tuple(x.shape[-2:])}")
        return self.model(x)


class _ResBlock(nn.Module):
    """``lrelu(BN(conv3(lrelu(BN(conv3 x)))) + conv1 x)``: (B, cin, H, W) -> (B, cout, H, W)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                                  nn.LeakyReLU(0.2, True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()
        self.act = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class ResidualUNet(nn.Module):
    """S, the segmentor (see the module docstring); also the architecture of f_pre.

    Args:
        in_channels: 1 (an image).
        channels: features per level (the paper: 32-64-128-256-512).

    Shapes: ``(B, in_channels, H, W)`` -> ``(B, 1, H, W)`` lesion probability; H, W divisible
    by ``2 ** (len(channels) - 1)``.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (32, 64, 128, 256, 512)) -> None:
        super().__init__()
        ch = list(channels)
        self.enc = nn.ModuleList([_ResBlock(in_channels, ch[0])] + [_ResBlock(a, b) for a, b in zip(ch, ch[1:], strict=False)])
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList([nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                                nn.Conv2d(b, a, 3, padding=1)) for a, b in zip(ch, ch[1:], strict=False)][::-1])
        self.dec = nn.ModuleList([_ResBlock(2 * a, a) for a in ch[:-1]][::-1])
        self.head = nn.Conv2d(ch[0], 1, 1)
        self.factor = 2 ** (len(ch) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(f"ResidualUNet needs H and W divisible by {self.factor}, got {tuple(x.shape[-2:])}")
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        skips.pop()
        for up, dec in zip(self.ups, self.dec, strict=True):
            x = dec(torch.cat([up(x), skips.pop()], 1))
        return torch.sigmoid(self.head(x))


class PatchCritic(nn.Module):
    """D_x or D_m: least-squares patch critic (see the module docstring).

    Args:
        in_channels: 1 (an image or a mask).
        channels: features of the stride-2 4x4 convs (32, 128, 256, 512); instance norm and
            LeakyReLU(0.2) after each.

    Shapes: ``(B, in_channels, H, W)`` -> ``(B, 1, H / 2**n, W / 2**n)`` scores in [0, 1].
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (32, 128, 256, 512)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for c in channels:
            layers += [nn.Conv2d(cin, c, 4, stride=2, padding=1), _in(c), nn.LeakyReLU(0.2, True)]
            cin = c
        # a 4x4 stride-1 conv that keeps the size ("same" padding: 1 before, 2 after)
        layers += [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(cin, 1, 4, stride=1), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
