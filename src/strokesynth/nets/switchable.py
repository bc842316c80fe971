"""Switchable normalisation (Luo et al., ICLR 2019), 2D and 3D, as the ``switchable`` norm kind.

For ``x`` of shape ``(B, C, *S)`` three sets of statistics are computed from one pass:

- instance norm (IN): mean and variance over ``S`` per sample and channel, ``(B, C)``;
- layer norm (LN): over ``C`` and ``S`` per sample, ``(B, 1)``, derived from the IN moments;
- batch norm (BN): over ``B`` and ``S`` per channel, ``(1, C)``, derived from the IN moments;
  running averages are kept (PyTorch's ``momentum`` convention) and used in eval mode.

The normalising mean and variance are softmax-weighted sums of the three, with two learned
3-vectors (``mean_weight``, ``var_weight``), followed by a per-channel affine transform. SLNet
(Wang, Song et al.) uses it in place of every batch norm of its U-Net. Variances are the
biased ones (as BatchNorm's normalisation), so a layer whose weights pick one kind reproduces
``nn.BatchNorm2d`` / ``nn.InstanceNorm2d(affine=True)`` / ``nn.GroupNorm(1, C)``, which the
tests check.
"""

from __future__ import annotations

import torch
from torch import nn

from strokesynth.nets.blocks import NORMS


class SwitchNorm(nn.Module):
    """Switchable normalisation over ``(B, C, *S)`` tensors (any number of spatial dims).

    Args:
        channels: C.
        eps: added to the variance.
        momentum: running-statistics update rate of the BN branch (PyTorch convention).
    """

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.channels, self.eps, self.momentum = channels, eps, momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.mean_weight = nn.Parameter(torch.ones(3))
        self.var_weight = nn.Parameter(torch.ones(3))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        flat = x.reshape(b, c, -1)
        mean_in = flat.mean(-1)  # (B, C)
        var_in = flat.var(-1, unbiased=False)
        second = var_in + mean_in**2
        mean_ln = mean_in.mean(1, keepdim=True)  # (B, 1)
        var_ln = second.mean(1, keepdim=True) - mean_ln**2
        if self.training:
            mean_bn = mean_in.mean(0, keepdim=True)  # (1, C)
            var_bn = second.mean(0, keepdim=True) - mean_bn**2
            with torch.no_grad():
                n = flat.shape[0] * flat.shape[2]
                unbiased = var_bn * (n / max(n - 1, 1))
                self.running_mean.lerp_(mean_bn[0].to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_(unbiased[0].to(self.running_var.dtype), self.momentum)
        else:
            mean_bn, var_bn = self.running_mean[None], self.running_var[None]
        mw = self.mean_weight.softmax(0)
        vw = self.var_weight.softmax(0)
        mean = mw[0] * mean_in + mw[1] * mean_ln + mw[2] * mean_bn
        var = vw[0] * var_in + vw[1] * var_ln + vw[2] * var_bn
        out = (flat - mean[..., None]) / torch.sqrt(var[..., None].clamp_min(0) + self.eps)
        out = out * self.weight[None, :, None] + self.bias[None, :, None]
        return out.reshape_as(x)

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps}, momentum={self.momentum}"


@NORMS.register("switchable")
def _switchable(dims: int, channels: int, **_: object) -> nn.Module:
    return SwitchNorm(channels)
