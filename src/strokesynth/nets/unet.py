"""U-Net (2D and 3D) and V-Net with per-axis strides, so 2-slice slabs work with (2, 2, 1).

Both follow MONAI's convention of a ``spatial_dims`` argument; strides are per level, an int
or a per-axis tuple (the ISLES 2018 modification: ``(2, 2, 1)`` never pools along z).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import ChannelSELayer
from torch import nn

from strokesynth.nets.blocks import conv as _conv
from strokesynth.nets.blocks import conv_transpose as _up
from strokesynth.nets.blocks import max_pool
from strokesynth.nets.blocks import norm as make_norm

Stride = int | Sequence[int]


def _tuple(stride: Stride, dims: int) -> tuple[int, ...]:
    return (stride,) * dims if isinstance(stride, int) else tuple(int(s) for s in stride)


class DoubleConv(nn.Sequential):
    """(conv 3 -> norm -> ReLU [-> dropout]) x 2 (norm: any kind of :func:`strokesynth.nets.blocks.norm`,
    batch by default; ``dropout`` > 0 adds channel-agnostic dropout after each ReLU, as the 3D U-Net
    of Platscher et al.'s appendix, 2 %)."""

    def __init__(self, dims: int, cin: int, cout: int, norm: str = "batch", dropout: float = 0.0) -> None:
        conv = _conv(dims)
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        bias = norm == "none"  # a conv followed by a norm needs no bias
        super().__init__(conv(cin, cout, 3, padding=1, bias=bias), make_norm(norm, dims, cout), nn.ReLU(inplace=True),
                         *drop, conv(cout, cout, 3, padding=1, bias=bias), make_norm(norm, dims, cout),
                         nn.ReLU(inplace=True), *drop)


class UNet(nn.Module):
    """Classic U-Net: double convs, max-pool down (kernel = stride), transposed-conv up, skip concat.

    With ``channels=(64, 128, 256, 512, 1024)``, 3 inputs and 2 classes it has 31,037,698
    parameters, the "31.04 M" U-Net of the literature. ``se_ratio > 0`` adds a squeeze-and-
    excitation block (MONAI's ``ChannelSELayer``, reduction ``se_ratio``) after every encoder
    block; with ``norm="switchable"`` and ``se_ratio=1`` this is SLNet (Wang, Song et al., ISLES
    2018), 33.84 M parameters at the same size.

    Args:
        spatial_dims: 2 or 3.
        in_channels, out_channels: input channels and classes.
        channels: features per level, e.g. (32, 64, 128, 256, 512).
        strides: one per down step (``len(channels) - 1``), int or per-axis tuple.
        norm: normalisation kind (``batch``, ``instance``, ``group``, ``none``, ``switchable``).
        se_ratio: squeeze-and-excitation reduction after each encoder block (0 = none).
        dropout: dropout after every conv's ReLU (0 = none; 0.02 in Platscher et al.'s 3D U-Net,
            which with ``channels=(16, 32, 64, 128, 256)``, 1 input and 2 classes has 5,646,402
            parameters, their "5.65 M").
        encoder_norm: normalisation of the encoder blocks (``None``: ``norm``; ``"none"``: no
            normalisation in the encoder, as Platscher et al.'s 3D U-Net).

    Shapes: ``(B, in_channels, *S)`` -> ``(B, out_channels, *S)``; each spatial size must be
    divisible by the product of its strides.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int,
                 channels: Sequence[int] = (32, 64, 128, 256, 512), strides: Sequence[Stride] | None = None,
                 norm: str = "batch", se_ratio: int = 0, dropout: float = 0.0, encoder_norm: str | None = None) -> None:
        super().__init__()
        enc_norm = norm if encoder_norm is None else encoder_norm
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        strides = list(strides) if strides is not None else [2] * (len(channels) - 1)
        if len(strides) != len(channels) - 1:
            raise ValueError(f"need {len(channels) - 1} strides for {len(channels)} levels, got {len(strides)}")
        self.strides = [_tuple(s, spatial_dims) for s in strides]
        pool = max_pool(spatial_dims)
        self.enc = nn.ModuleList([DoubleConv(spatial_dims, in_channels, channels[0], enc_norm, dropout)])
        self.pools = nn.ModuleList()
        for i, s in enumerate(self.strides):
            self.pools.append(pool(s, s))
            # the bottom block belongs to the encoder
            self.enc.append(DoubleConv(spatial_dims, channels[i], channels[i + 1], enc_norm, dropout))
        self.ups = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in reversed(range(len(self.strides))):
            s = self.strides[i]
            self.ups.append(_up(spatial_dims)(channels[i + 1], channels[i], s, stride=s))
            self.dec.append(DoubleConv(spatial_dims, 2 * channels[i], channels[i], norm, dropout))
        self.head = _conv(spatial_dims)(channels[0], out_channels, 1)
        self.se = nn.ModuleList(
            [ChannelSELayer(spatial_dims, c, r=se_ratio) if se_ratio > 0 else nn.Identity() for c in channels])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        x = self.se[0](self.enc[0](x))
        for pool, enc, se in zip(self.pools, self.enc[1:], self.se[1:], strict=True):
            skips.append(x)
            x = se(enc(pool(x)))
        for up, dec in zip(self.ups, self.dec, strict=True):
            x = dec(torch.cat([up(x), skips.pop()], 1))
        return self.head(x)


class _VStage(nn.Module):
    """``n`` (conv 5 -> BN -> PReLU) with a residual connection (V-Net)."""

    def __init__(self, dims: int, channels: int, n: int, norm: str = "batch") -> None:
        super().__init__()
        conv = _conv(dims)
        self.body = nn.Sequential(*[m for _ in range(n) for m in (conv(channels, channels, 5, padding=2, bias=False),
                                                                   make_norm(norm, dims, channels), nn.PReLU(channels))])
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


class VNet(nn.Module):
    """V-Net (Milletari et al.): residual 5x5(x5) stages, strided-conv down, transposed-conv up.

    Args:
        spatial_dims: 2 or 3.
        channels: features per level (each down step doubles them in the paper: 16, 32, 64, 128, 256).
        convs: convolutions per level (paper: 1, 2, 3, 3, 3).
        strides: per down step, int or per-axis tuple (``(2, 2, 1)`` for thin slabs).

    Shapes: ``(B, in_channels, *S)`` -> ``(B, out_channels, *S)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int,
                 channels: Sequence[int] = (16, 32, 64, 128, 256), convs: Sequence[int] = (1, 2, 3, 3, 3),
                 strides: Sequence[Stride] | None = None, norm: str = "batch") -> None:
        super().__init__()
        conv, up = _conv(spatial_dims), _up(spatial_dims)
        kind = norm

        def norm(c: int) -> nn.Module:
            return make_norm(kind, spatial_dims, c)

        strides = list(strides) if strides is not None else [2] * (len(channels) - 1)
        if len(strides) != len(channels) - 1 or len(convs) != len(channels):
            raise ValueError("need len(channels) - 1 strides and len(channels) conv counts")
        self.strides = [_tuple(s, spatial_dims) for s in strides]
        self.stem = nn.Sequential(conv(in_channels, channels[0], 5, padding=2, bias=False), norm(channels[0]),
                                  nn.PReLU(channels[0]))
        self.enc = nn.ModuleList([_VStage(spatial_dims, channels[0], convs[0], kind)])
        self.down = nn.ModuleList()
        for i, s in enumerate(self.strides):
            self.down.append(nn.Sequential(conv(channels[i], channels[i + 1], s, stride=s, bias=False),
                                           norm(channels[i + 1]), nn.PReLU(channels[i + 1])))
            self.enc.append(_VStage(spatial_dims, channels[i + 1], convs[i + 1], kind))
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in reversed(range(len(self.strides))):
            s = self.strides[i]
            self.up.append(nn.Sequential(up(channels[i + 1], channels[i], s, stride=s, bias=False), norm(channels[i]),
                                         nn.PReLU(channels[i])))
            self.fuse.append(conv(2 * channels[i], channels[i], 1))
            self.dec.append(_VStage(spatial_dims, channels[i], max(convs[i], 1), kind))
        self.head = conv(channels[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.enc[0](self.stem(x))
        skips = []
        for down, enc in zip(self.down, self.enc[1:], strict=True):
            skips.append(x)
            x = enc(down(x))
        for up, fuse, dec in zip(self.up, self.fuse, self.dec, strict=True):
            x = dec(fuse(torch.cat([up(x), skips.pop()], 1)))
        return self.head(x)
