"""Exponential moving averages of a network's weights (for GAN generators).

A GAN's iterates circle around the equilibrium instead of settling, so the last epoch's
generator is one point on that circle; the average of the recent weights sits nearer its centre
(Yazıcı et al., "The unusual effectiveness of averaging in GAN training", ICLR 2019; the
generator averaging of ProGAN and StyleGAN). A system keeps the average as an extra network
(trained by no optimiser, saved in every checkpoint) and calls :func:`update_average` after each
step of the averaged network's optimiser.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from strokesynth.errors import ConfigError


def check_decay(decay: float, key: str = "ema_decay") -> None:
    """Refuse a decay outside [0, 1) (0 turns the average off) as a config error on ``key``."""
    if not 0.0 <= decay < 1.0:
        raise ConfigError(key, f"must lie in [0, 1), got {decay}")


def averaged_copy(net: nn.Module) -> nn.Module:
    """A copy of ``net`` that starts at its weights and takes no gradients."""
    return copy.deepcopy(net).requires_grad_(False)


@torch.no_grad()
def update_average(average: nn.Module, net: nn.Module, decay: float, step: int) -> float:
    """Move ``average`` towards ``net``: ``w_avg <- d * w_avg + (1 - d) * w``; buffers are copied.

    Args:
        decay: the long-run decay (0.99 averages over about the last 100 steps).
        step: how many updates came before this one (0 for the first). The decay used is
            ``min(decay, (1 + step) / (10 + step))``, so the first updates move most of the way
            and the average does not hold on to the initial weights.

    Returns:
        The decay used.
    """
    d = min(float(decay), (1.0 + step) / (10.0 + step))
    for a, w in zip(average.parameters(), net.parameters(), strict=True):
        a.lerp_(w, 1.0 - d)
    for a, w in zip(average.buffers(), net.buffers(), strict=True):
        a.copy_(w)
    return d
