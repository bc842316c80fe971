"""Adversarial losses in one place: vanilla (BCE), least squares, hinge and Wasserstein, plus the
gradient penalty of WGAN-GP.

Every function takes a critic output as a tensor of logits of any shape (a PatchGAN's
``(B, 1, H, W)``, a 3D critic's ``(B, 1)``) or a list of such tensors (multi-scale critics);
a list is averaged over its scales.

=========  =====================================================  ===========================
mode       discriminator loss                                      generator loss
=========  =====================================================  ===========================
vanilla    BCE(real, 1) + BCE(fake, 0)                             BCE(fake, 1)
lsgan      (real - 1)² + fake²  (means)                            (fake - 1)²
hinge      relu(1 - real) + relu(1 + fake)                         -fake
wgan       fake - real                                             -fake
=========  =====================================================  ===========================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from strokesynth.errors import ConfigError

GanMode = Literal["vanilla", "lsgan", "hinge", "wgan"]
GAN_MODES = ("vanilla", "lsgan", "hinge", "wgan")
Logits = torch.Tensor | Sequence[torch.Tensor]


def _scales(logits: Logits) -> list[torch.Tensor]:
    return [logits] if isinstance(logits, torch.Tensor) else list(logits)


def _mean_over_scales(fn: Callable[[torch.Tensor], torch.Tensor], logits: Logits) -> torch.Tensor:
    parts = [fn(t.float()) for t in _scales(logits)]
    return torch.stack(parts).mean()


def _check(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ConfigError("gan_loss", f"unknown adversarial loss {mode!r} (choose from {', '.join(GAN_MODES)})")


def discriminator_loss(real: Logits, fake: Logits, mode: GanMode = "vanilla") -> torch.Tensor:
    """The critic's loss on real and generated samples (see the module table); a scalar."""
    _check(mode)
    if mode == "vanilla":
        return (_mean_over_scales(lambda t: F.binary_cross_entropy_with_logits(t, torch.ones_like(t)), real)
                + _mean_over_scales(lambda t: F.binary_cross_entropy_with_logits(t, torch.zeros_like(t)), fake))
    if mode == "lsgan":
        return (_mean_over_scales(lambda t: ((t - 1) ** 2).mean(), real)
                + _mean_over_scales(lambda t: (t ** 2).mean(), fake))
    if mode == "hinge":
        return (_mean_over_scales(lambda t: F.relu(1 - t).mean(), real)
                + _mean_over_scales(lambda t: F.relu(1 + t).mean(), fake))
    return _mean_over_scales(lambda t: t.mean(), fake) - _mean_over_scales(lambda t: t.mean(), real)


def generator_loss(fake: Logits, mode: GanMode = "vanilla") -> torch.Tensor:
    """The generator's adversarial loss on the critic's output for generated samples; a scalar."""
    _check(mode)
    if mode == "vanilla":
        return _mean_over_scales(lambda t: F.binary_cross_entropy_with_logits(t, torch.ones_like(t)), fake)
    if mode == "lsgan":
        return _mean_over_scales(lambda t: ((t - 1) ** 2).mean(), fake)
    return -_mean_over_scales(lambda t: t.mean(), fake)


def gradient_penalty(critic: Callable[[torch.Tensor], Logits], real: torch.Tensor, fake: torch.Tensor,
                     *, generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP's penalty E[(‖∇ critic(x̂)‖₂ − 1)²] at x̂ = ε·real + (1 − ε)·fake, ε ~ U(0, 1) per sample.

    Works for ``(B, C, *spatial)`` inputs of any number of spatial dims (2D slices, 3D masks)
    and for critics returning lists of multi-scale outputs (their sums are differentiated).
    Multiply by λ (10 in Gulrajani et al.) in the caller.
    """
    eps = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype,
                     generator=generator)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = sum(t.float().sum() for t in _scales(critic(mixed)))
    (grad,) = torch.autograd.grad(out, mixed, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - 1) ** 2).mean()


class Adversarial:
    """One adversarial mode as an object: ``d(real, fake)`` and ``g(fake)`` (see the module table)."""

    def __init__(self, mode: GanMode = "vanilla") -> None:
        _check(mode)
        self.mode = mode

    def d(self, real: Logits, fake: Logits) -> torch.Tensor:
        return discriminator_loss(real, fake, self.mode)

    def g(self, fake: Logits) -> torch.Tensor:
        return generator_loss(fake, self.mode)
