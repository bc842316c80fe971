"""Fidelity of the pseudo-DWI recipe to Wang, Song et al. (ISLES 2018 winner)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from strokesynth.recipes.fidelity import Spec, millions

PAPER = "Wang, Song et al., ISLES 2018 (pseudo-DWI from perfusion maps and CTA, SLNet)"


def configs() -> tuple[Any, Any]:
    from strokesynth.recipes.pseudo_dwi import load_recipe_config

    return load_recipe_config("paper"), load_recipe_config("tiny")


def _net(name: str, channels: list[int], inputs: int = 3) -> Any:
    from strokesynth.nets.registry import NETWORKS

    return NETWORKS.build(name, SimpleNamespace(channels=channels, num_classes=2), inputs)


def _table(table: int) -> list[Any]:
    from strokesynth.recipes.pseudo_dwi import ROWS

    return [r for r in ROWS if r.table == table]


def _lr(x: float) -> str:
    return f"{x:.0e}".replace("e-0", "e-")


def _wce(c: Any) -> str:
    """Measured on a random batch: the loss the config builds against both formulas."""
    import torch
    import torch.nn.functional as F

    from strokesynth.losses import make_loss
    from strokesynth.losses.synthesis import HardnessGeneralizedDice, lesion_weight_map

    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(2, 2, 24, 24, generator=g), (torch.rand(2, 1, 24, 24, generator=g) > 0.8).long()
    w, d = c.system.lesion_weight, c.system.distance
    a = lesion_weight_map(y, w, d)[:, 0]
    ce = F.cross_entropy(logits, y[:, 0], reduction="none")
    got = float(make_loss("wce_hgd", lesion_weight=w, distance=d)(logits, y) - HardnessGeneralizedDice()(logits, y))
    if abs(got - float((a * ce).sum() / a.sum())) < 1e-5:
        return "Σ A·CE / Σ A, w and D of L_g"
    return "mean of A·CE" if abs(got - float((a * ce).mean())) < 1e-5 else f"other ({got:.4f})"


def _init(c: Any) -> str:
    """The norm weights of Φg as the system initialises it."""
    from torch import nn

    from strokesynth.systems.pseudo_dwi import _unet

    norms = [m.weight for m in _unet(4, c.system.generator_channels[:2]).modules()
             if isinstance(m, nn.BatchNorm2d) and m.weight is not None]
    return "Xavier; norm weights 1" if all(bool((w == 1).all()) for w in norms) else "Xavier; norm weights drawn"


def _rve(c: Any) -> str:
    from strokesynth.recipes.pseudo_dwi import _unsigned_rve

    return "|V_s − V_g| / V_g" if _unsigned_rve([{"rve": -0.5}])[0]["rve"] == 0.5 else "(V_s − V_g) / V_g"


def _seg_on(c: Any, table: int) -> str:
    from strokesynth.recipes.pseudo_dwi import ROWS, row_config

    cfgs = [row_config(c.system, r) for r in ROWS if r.table == table and "not in the paper" not in r.label]
    kinds = {(x.mode, x.seg_input, x.segmenter.loss if table == 3 else "each loss") for x in cfgs}
    return "; ".join(f"{m} on {i}, {loss}" for m, i, loss in sorted(kinds))


def _lesion_share(c: Any) -> str:
    f = c.system.run.lesion_fraction
    return "uniform" if f == 0 else f"{f:.0%} of each batch from lesion slices"


SPECS = [
    Spec("CTA features: bolus window K, frames C_e (method)", "K 5, C_e 6",
         lambda c: f"K {c.system.cta.k}, C_e {c.system.cta.frames}", "perfusion/cta.py:CtaConfig"),
    Spec("Generator Φg widths (method)", "U-Net 64..1024",
         lambda c: f"U-Net {c.system.generator_channels[0]}..{c.system.generator_channels[-1]}",
         "systems/pseudo_dwi.py:PseudoDwiConfig.generator_channels",
         ),
    Spec("U-Net parameters, 3 inputs, 2 classes (Table 3)", "31.04 M",
         lambda c: millions(_net("unet", c.system.segmenter.channels)), "nets/registry.py:build_unet"),
    Spec("SLNet parameters: U-Net + switchable norm + SE (Table 3)", "33.84 M",
         lambda c: millions(_net("slnet", c.system.segmenter.channels)), "nets/registry.py:build_slnet"),
    Spec("L_g = w-L2 + γ ℓ_h; w, D, γ (method)", "w 1.5, D 50, γ 1.2",
         lambda c: f"w {c.system.lesion_weight}, D {c.system.distance:g}, γ {c.system.gamma}",
         "losses/synthesis.py"),
    Spec("L_WCE = Σ A·CE / Σ A with the configured w, D (Eq. 12)", "Σ A·CE / Σ A, w and D of L_g", _wce,
         "losses/synthesis.py:WeightedCrossEntropy"),
    Spec("L_s = L_WCE + L_HGD (method)", "wce_hgd", lambda c: c.system.segmenter.loss,
         "losses/segmentation.py:_wce_hgd"),
    Spec("Optimiser (experiments)", "RMSprop 2e-3, x0.2 after 180 of 300 epochs, batch 5",
         lambda c: (f"{c.system.optim.name.replace('rmsprop', 'RMSprop')} {_lr(c.system.optim.lr)}, "
                    f"x{c.system.optim.factor:g} after {c.system.optim.milestones[0]} of {c.system.run.epochs} "
                    f"epochs, batch {c.system.run.batch_size}"),
         "systems/pseudo_dwi.py:_paper_optim", ),
    Spec("Weight init (experiments)", "Xavier; norm weights 1", _init, "nets/blocks.py:init_weights"),
    Spec("Augmentation (experiments: none reported)", "none",
         lambda c: "none" if not c.system.data.augment_enabled else "flips, rotation, translation, scaling",
         "systems/pseudo_dwi.py:_paper_data"),
    Spec("Batch sampling", "uniform", _lesion_share, "engine/config.py:RunConfig.lesion_fraction"),
    Spec("Slice size", "256x256", lambda c: "x".join(map(str, c.system.data.size)),
         "systems/pseudo_dwi.py:PseudoDwiConfig.data"),
    Spec("Table 1 generator input", "F_o", lambda c: _t1_inputs(c), "recipes/pseudo_dwi.py:ROWS"),
    Spec("Table 1 segmenter of each pseudo-DWI", "unet, ce", lambda c: _t1_segmenter(c), "recipes/pseudo_dwi.py:ROWS"),
    Spec("Table 1 ℓ_h feature extractor Φc", "trained jointly", lambda c: "trained as a lesion classifier on the real DWI",
         "nets/context.py", "minimising ℓ_h over Φc's own weights makes Φc a constant (ℓ_h = 0); the paper says no "
         "more, so Φc gets its own objective"),
    Spec("Table 3 segmenters: input, loss", "segmentation on maps, ce", lambda c: _seg_on(c, 3),
         "recipes/pseudo_dwi.py:ROWS"),
    Spec("Table 3 networks", "FCN, U-Net, R2UNet, ResUNet, SLNet, SLNet w/o SE, SLNet w/o SN",
         lambda c: ", ".join(r.label for r in _table(3) if "not in the paper" not in r.label),
         "nets/fcn.py, nets/r2unet.py, nets/registry.py:build_resunet",
         ),
    Spec("Table 3 FCN", "FCN-8s on VGG-16 (fc6 7x7x4096)", lambda c: "FCN-8s, VGG-style encoder of the table's "
         "widths, fc6 3x3 of twice the last width", "nets/fcn.py:FCN8s",
         "a 7x7x4096 fc6 on 1024 features would hold 205 M parameters; the encoder takes the U-Nets' widths"),
    Spec("Table 4 segmentation losses: input", "segmentation on maps, each loss", lambda c: _seg_on(c, 4),
         "recipes/pseudo_dwi.py:ROWS"),
    Spec("Relative volume error (Table 5)", "|V_s − V_g| / V_g", _rve, "recipes/pseudo_dwi.py:_unsigned_rve"),
    Spec("Model selection", "not stated", lambda c: f"{c.system.run.selection}: inner split of each fold's "
         "training subjects (synthesis-only rows: last epoch)", "engine/protocol.py",
         "the toolkit never chooses on the scans it scores"),
]


def _t1_segmenter(c: Any) -> str:
    from strokesynth.recipes.pseudo_dwi import ROWS, row_config

    return ", ".join(sorted({f"{x.segmenter.name}, {x.segmenter.loss}" for x in
                             (row_config(c.system, r) for r in ROWS if r.table == 1)}))


def _t1_inputs(c: Any) -> str:
    from strokesynth.recipes.pseudo_dwi import ROWS, row_config

    kinds = {"+".join({"maps": "F_o", "mip": "F_l", "features": "F_h"}[i] for i in row_config(c.system, r)
                      .generator_inputs) for r in ROWS if r.table == 1}
    return ", ".join(sorted(kinds))
