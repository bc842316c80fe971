"""Training parts the adversarial systems share: pix2pix's conditional step and its image history.

- :func:`conditional_gan_step`: one pix2pix update of a ``discriminator`` and a ``generator``
  (the CT-to-MR cGAN, the label-map Pix2Pix).
- :class:`ImagePool`: pix2pix's/CycleGAN's buffer of past generated images shown to the
  discriminator (the label-map CycleGAN, the pseudo-healthy systems).
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from strokesynth.engine.system import Runtime
from strokesynth.losses.adversarial import Adversarial


def conditional_gan_step(x: torch.Tensor, y: torch.Tensor, rt: Runtime, adversarial: Adversarial,
                         lambda_l1: float, weight: torch.Tensor | None = None) -> tuple[float, float, float]:
    """One pix2pix step (Isola et al.) on networks ``generator`` and ``discriminator`` of ``rt``.

    The discriminator sees (condition, target) pairs as real and (condition, generated) as fake in one
    pass, then the generator minimises its adversarial loss plus ``lambda_l1`` times L1 to the target.

    Args:
        x: condition ``(B, C, H, W)``; y: target ``(B, 1, H, W)``, both in the generator's [-1, 1] space.
        weight: optional per-pixel weight of the L1 term, broadcastable to ``y`` (``None``: plain L1).

    Returns:
        (discriminator loss, generator adversarial loss, L1 in [-1, 1] units).
    """
    with rt.autocast():
        fake = rt.net("generator")(x)
    rt.requires_grad("discriminator", True)
    with rt.autocast():
        logits = rt.net("discriminator")(torch.cat([torch.cat([x, y], 1), torch.cat([x, fake.detach()], 1)]))
    real_l, fake_l = logits.float().chunk(2)
    loss_d = 0.5 * adversarial.d(real_l, fake_l)
    rt.step(loss_d, "discriminator")
    rt.requires_grad("discriminator", False)
    with rt.autocast():
        adv = adversarial.g(rt.net("discriminator")(torch.cat([x, fake], 1)).float())
    l1 = F.l1_loss(fake.float(), y) if weight is None else (weight * (fake.float() - y).abs()).mean()
    rt.step(adv + lambda_l1 * l1, "generator")
    return float(loss_d.detach()), float(adv.detach()), float(l1.detach())


class ImagePool:
    """pix2pix's history of generated images: once full, each new image is swapped with a
    stored one half of the time (Python's ``random``, seeded and saved by the loop)."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size <= 0:
            return images
        out = []
        for img in images.detach():
            img = img[None]
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif random.random() < 0.5:
                k = random.randrange(self.size)
                out.append(self.images[k].clone())
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.cat(out)
