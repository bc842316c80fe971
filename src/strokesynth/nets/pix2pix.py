"""pix2pix networks for CT-to-MR synthesis (Rubin & Abulnaga): ResNet generator and PatchGAN.

:class:`ResnetGenerator` is pix2pix's ``resnet_9blocks``: 7x7 conv, two stride-2 3x3 convs,
``n_blocks`` residual blocks (reflection pad, 3x3 conv, instance norm, ReLU, dropout 0.5,
reflection pad, 3x3 conv, instance norm), two fractionally-strided 3x3 convs, 7x7 conv, tanh.
Its dropout is the paper's noise *z*: it stays on at test time unless ``test_dropout=False``.

:class:`PatchDiscriminator` is the 70x70 PatchGAN (``n_layers=3``): 4x4 convs, stride 2 in the
first ``n_layers``, instance norm + LeakyReLU(0.2) everywhere but the first and last conv; a
256x256 input gives 30x30 logits. It reuses MONAI's ``PatchDiscriminator``, whose layers are
the same; MONAI leaves out the conv biases before the (affine-free) instance norms, which the
norm cancels anyway, so the two compute the same function (a test copies weights into a
from-scratch pix2pix layer stack and compares outputs).
"""

from __future__ import annotations

from typing import Literal, TypeVar

import torch
import torch.nn.functional as F
from monai.networks.nets import PatchDiscriminator as _MonaiPatchDiscriminator
from torch import nn

from strokesynth.nets.blocks import norm as make_norm

Norm = Literal["instance", "batch", "none"]


def _norm(kind: Norm, channels: int) -> nn.Module:
    return make_norm(kind, 2, channels)


class NoiseDropout(nn.Module):
    """Dropout that can stay active in ``eval()`` mode (pix2pix's noise at test time).

    Args:
        p: drop probability.
        at_test: keep dropping in eval mode.
    """

    def __init__(self, p: float = 0.5, at_test: bool = True) -> None:
        super().__init__()
        self.p = float(p)
        self.at_test = bool(at_test)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=self.training or self.at_test)

    def extra_repr(self) -> str:
        return f"p={self.p}, at_test={self.at_test}"


M = TypeVar("M", bound=nn.Module)


def set_test_dropout(module: M, on: bool) -> M:
    """Set ``at_test`` of every :class:`NoiseDropout` in ``module``; returns ``module``."""
    for m in module.modules():
        if isinstance(m, NoiseDropout):
            m.at_test = bool(on)
    return module


class ResnetBlock(nn.Module):
    """``x + [pad, conv3, norm, ReLU, dropout, pad, conv3, norm](x)``; shape-preserving (B, C, H, W).

    ``negative_slope`` > 0 makes the activation a LeakyReLU of that slope (the pseudo-healthy
    generators of Xia et al.); pix2pix's blocks use ReLU (0).
    """

    def __init__(self, channels: int, norm: Norm = "instance", dropout: float = 0.5, test_dropout: bool = True,
                 negative_slope: float = 0.0) -> None:
        super().__init__()
        bias = norm != "batch"  # pix2pix: biases unless batch norm follows
        act = nn.LeakyReLU(negative_slope, True) if negative_slope > 0 else nn.ReLU(True)
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                                   _norm(norm, channels), act]
        if dropout > 0:
            layers.append(NoiseDropout(dropout, test_dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), _norm(norm, channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """pix2pix ResNet generator (``resnet_9blocks`` with the defaults).

    Args:
        in_channels: input channels (5 for CT, CBF, CBV, MTT, Tmax).
        out_channels: output channels (1 for DWI).
        ngf: features of the first conv (64 in the paper); 2x and 4x after the down-convs.
        n_blocks: residual blocks at 1/4 resolution (9 in the paper).
        dropout: dropout probability inside the blocks (0.5; 0 disables it).
        test_dropout: keep dropout on in ``eval()`` (the paper's noise); see :meth:`set_test_dropout`.
        norm: ``instance`` (paper), ``batch`` or ``none``.

    Shapes: ``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)`` in [-1, 1] (tanh);
    H and W must be multiples of 4.
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, n_blocks: int = 9, *,
                 dropout: float = 0.5, test_dropout: bool = True, norm: Norm = "instance") -> None:
        super().__init__()
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias),
                                   _norm(norm, ngf), nn.ReLU(True)]
        for i in range(2):
            c = ngf * 2 ** i
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), _norm(norm, 2 * c), nn.ReLU(True)]
        layers += [ResnetBlock(4 * ngf, norm, dropout, test_dropout) for _ in range(n_blocks)]
        for i in range(2):
            c = ngf * 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                       _norm(norm, c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"ResnetGenerator needs H and W divisible by 4, got {tuple(x.shape[-2:])}")
        return self.model(x)

    def set_test_dropout(self, on: bool) -> ResnetGenerator:
        """Switch the test-time dropout noise on or off (training mode always drops)."""
        return set_test_dropout(self, on)


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: logits per patch of ``concat(condition, image)``.

    Args:
        in_channels: channels of the concatenated input (6 = 5 CTP channels + DWI).
        ndf: features of the first conv (64); doubled per layer up to 8x.
        n_layers: stride-2 conv layers (3 gives the 70x70 PatchGAN).
        norm: ``instance`` (paper), ``batch`` or ``none``.

    Shapes: ``(B, in_channels, H, W)`` -> ``(B, 1, H/2^n - 2, W/2^n - 2)`` logits (30x30 for
    256x256 and ``n_layers=3``); each logit sees :meth:`receptive_field` input pixels square.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, *, norm: Norm = "instance") -> None:
        super().__init__()
        monai_norm = {"instance": "INSTANCE", "batch": "BATCH", "none": None}
        if norm not in monai_norm:
            raise ValueError(f"unknown norm {norm!r} (instance, batch, none)")
        self.net = _MonaiPatchDiscriminator(spatial_dims=2, num_layers_d=n_layers, channels=ndf,
                                            in_channels=in_channels, out_channels=1, norm=monai_norm[norm],
                                            kernel_size=4, activation=("LEAKYRELU", {"negative_slope": 0.2}),
                                            last_conv_kernel_size=4)
        self.n_layers = n_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[-1]

    def receptive_field(self) -> int:
        """Input pixels (per side) that one output logit sees, from the conv geometry."""
        rf = 1
        for m in reversed([m for m in self.modules() if isinstance(m, nn.Conv2d)]):
            rf = (rf - 1) * m.stride[0] + m.kernel_size[0]
        return rf


class UnetGenerator(nn.Module):
    """pix2pix's U-Net generator (``unet_128`` at ``num_downs=7``, ``unet_256`` at 8).

    Encoder: ``num_downs`` 4x4 stride-2 convs, LeakyReLU(0.2) before each but the first, norm
    after each but the first and the innermost; features ``ngf``, 2x, 4x, then 8x. Decoder: ReLU,
    4x4 stride-2 transposed conv, norm (tanh after the outermost), dropout 0.5 in the
    ``num_downs - 5`` decoder layers of 8x width just above the innermost one (pix2pix's
    ``use_dropout``: two in ``unet_128``), skip concatenation at every level.

    Args:
        in_channels: input channels (a one-hot label map: its classes).
        out_channels: output channels (1 for DWI).
        ngf: features of the first conv (64 in pix2pix).
        num_downs: stride-2 steps; H and W must be divisible by ``2**num_downs`` (7 for 128 px).
        norm: ``instance`` (Platscher et al.), ``batch`` or ``none``.
        dropout: the decoder dropout (0.5; 0 disables it); off in ``eval()`` unless
            :meth:`set_test_dropout` turns pix2pix's test-time noise on.

    Shapes: ``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)`` in [-1, 1].
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, num_downs: int = 7, *,
                 norm: Norm = "instance", dropout: float = 0.5) -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be at least 2, got {num_downs}")
        bias = norm != "batch"
        widths = [min(ngf * 2 ** i, ngf * 8) for i in range(num_downs)]
        self.down = nn.ModuleList()
        prev = in_channels
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(prev, w, 4, stride=2, padding=1, bias=bias))
            if 0 < i < num_downs - 1:
                layers.append(_norm(norm, w))
            self.down.append(nn.Sequential(*layers))
            prev = w
        self.up = nn.ModuleList()
        for i in reversed(range(num_downs)):
            cin = widths[i] if i == num_downs - 1 else 2 * widths[i]
            cout = out_channels if i == 0 else widths[i - 1]
            layers = [nn.ReLU(True), nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=bias or i == 0)]
            if i == 0:
                layers.append(nn.Tanh())
            else:
                layers.append(_norm(norm, cout))
                if dropout > 0 and num_downs - 1 - max(num_downs - 5, 0) <= i < num_downs - 1:
                    layers.append(NoiseDropout(dropout, at_test=False))
            self.up.append(nn.Sequential(*layers))
        self.factor = 2 ** num_downs

    def set_test_dropout(self, on: bool) -> UnetGenerator:
        """Switch the decoder's dropout noise at test time on or off (off by default; training always drops)."""
        return set_test_dropout(self, on)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(f"UnetGenerator needs H and W divisible by {self.factor}, got {tuple(x.shape[-2:])}")
        skips = []
        for d in self.down:
            x = d(x)
            skips.append(x)
        skips.pop()
        for j, u in enumerate(self.up):
            x = u(x) if j == 0 else u(torch.cat([x, skips.pop()], 1))
        return x
