"""Fidelity of the ``pseudo-healthy`` recipe to Xia, Chartsias & Tsaftaris (pseudo-healthy
synthesis by pathology factorisation)."""

from __future__ import annotations

from typing import Any

from strokesynth.recipes.fidelity import Spec

PAPER = "Xia, Chartsias & Tsaftaris (pseudo-healthy synthesis with pathology factorisation)"


def configs() -> tuple[Any, Any]:
    from strokesynth.recipes.pseudo_healthy import load_recipe_config

    return load_recipe_config("paper"), load_recipe_config("tiny")


def _generator(c: Any) -> str:
    from torch import nn

    from strokesynth.nets.factorisation import FactorGenerator

    s = c.system
    g = FactorGenerator(1, s.ngf, s.n_blocks)
    blocks = [m for m in g.model if type(m).__name__ == "ResnetBlock"]
    acts = {type(a).__name__ + (f"({a.negative_slope:g})" if isinstance(a, nn.LeakyReLU) else "")
            for b in blocks for a in b.modules() if isinstance(a, (nn.ReLU, nn.LeakyReLU))}
    return f"ngf {s.ngf}, {len(blocks)} residual blocks with {', '.join(sorted(acts))}"


def _critic(c: Any) -> str:
    import torch
    from torch import nn

    from strokesynth.nets.factorisation import PatchCritic

    d = PatchCritic(1, c.system.critic_channels).eval()
    layers = list(d.model)
    first_norm = isinstance(layers[1], nn.InstanceNorm2d)
    with torch.no_grad():
        shape = d(torch.zeros(1, 1, 208, 160)).shape[-2:]
    return (f"{'-'.join(map(str, c.system.critic_channels))}, norm after every conv{'' if first_norm else ' but the first'}, "
            f"{'sigmoid' if isinstance(layers[-1], nn.Sigmoid) else 'no sigmoid'}, {shape[0]}x{shape[1]} maps of 208x160")


def _weights(c: Any) -> str:
    s = c.system
    return f"L_CC {s.lambda_cc:g}, L_GAN1 {s.lambda_gan:g}, L_Seg {s.lambda_mask:g}"


SPECS = [
    Spec("G and R (appendix)", "ngf 32, 6 residual blocks with LeakyReLU(0.2)", _generator,
         "nets/factorisation.py:FactorGenerator"),
    Spec("S (appendix)", "residual U-Net 32-64-128-256-512",
         lambda c: "residual U-Net " + "-".join(map(str, c.system.segmentor_channels)),
         "nets/factorisation.py:ResidualUNet"),
    Spec("Critics (appendix)", "32-128-256-512, norm after every conv, sigmoid, 13x10 maps of 208x160", _critic,
         "nets/factorisation.py:PatchCritic"),
    Spec("Loss weights, paired (method)", "L_CC 10, L_GAN1 1, L_Seg 10", _weights,
         "systems/pseudo_healthy.py:PseudoHealthyConfig"),
    Spec("L_GAN1's H-H term (method)", "ambiguous: which image of the H-H cycle D_x judges",
         lambda c: "D_x judges G(x_p) and R(x_h, 0): the adversarial term trains G and R",
         "systems/pseudo_healthy.py:PathologyFactorisation.train_step",
         "a reading, as the authors' public implementation: R(x_h, 0) has an empty mask and must look healthy"),
    Spec("Slices", "208x160", lambda c: f"{c.system.data.size}x{c.system.data.size}",
         "data/pathology_slices.py:SliceConfig",
         "square slices (data.size) resampled from each volume; the phantom's are square"),
]
