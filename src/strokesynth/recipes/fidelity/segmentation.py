"""Fidelity of the segmentation suite (``seg-comparison``, ``train`` with ``configs/seg``) to
Abulnaga & Rubin (ISLES 2018): PSPNet + focal loss against U-Net 2D, 3D U-Net and V-Net."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from strokesynth.recipes.fidelity import Spec

PAPER = "Abulnaga & Rubin, ISLES 2018 (PSPNet with focal loss on CTP slices)"
_NAMES = {"ct": "CT", "cbf": "CBF", "cbv": "CBV", "mtt": "MTT", "tmax": "Tmax", "dwi_gen": "generated DWI"}


def configs() -> tuple[Any, Any]:
    from strokesynth.config import load_config
    from strokesynth.recipes.segmentation import CONFIGS, load_comparison_config
    from strokesynth.systems.segmenter import TrainConfig

    def bundle(tiny: bool) -> SimpleNamespace:
        suffix = "_tiny" if tiny else ""
        return SimpleNamespace(
            train=load_config(TrainConfig, CONFIGS / f"pspnet_focal{suffix}.yaml"),
            unet3d=load_config(TrainConfig, CONFIGS / f"unet3d_focal{suffix}.yaml"),
            cmp=load_comparison_config("tiny" if tiny else "paper"))

    return bundle(False), bundle(True)


def _pspnet(c: Any) -> str:
    from strokesynth.systems.segmenter import build_model

    m = c.train.model
    net = build_model(m, len(c.train.data.modalities), pretrained=False)
    init = net.initializer.proj
    return (f"dilated ResNet-{m.depth} (stem {m.width}), output stride 8, bins {'-'.join(map(str, net.ppm.bins))}; "
            f"initializer BN + 1x1 conv {init.in_channels}->{init.out_channels}")


def _pretraining(c: Any) -> str:
    t = c.train
    if t.fine_tune_epochs <= 0:
        return "from scratch"
    source = "the file named by model.pretrained" if t.model.pretrained else "none named: the run warns"
    return f"two stages ({t.fine_tune_epochs} epochs of the new layers at {t.fine_tune_lr:g}); backbone: {source}"


def _loss(c: Any) -> str:
    loss = c.train.loss
    text = f"{loss.name}, γ {loss.gamma:g}"
    return text + (f" + {loss.dice_weight:g} x soft Dice" if loss.dice_weight else "")


def _archs(c: Any) -> str:
    from strokesynth.recipes.segmentation import PAPER_ARCHITECTURES

    return ", ".join(c.cmp.architectures or PAPER_ARCHITECTURES)


def _sampling(c: Any) -> str:
    f = c.train.run.lesion_fraction
    return "uniform" if f == 0 else f"{f:.0%} of each batch from lesion slices"


def _weights(c: Any) -> str:
    from strokesynth.losses import lesion_fraction_weights

    bg, les = lesion_fraction_weights(1, 100)
    return f"(background, lesion) = (f, 1 − f): ({bg:g}, {les:g}) at f = 0.01"


SPECS = [
    Spec("Inputs (method)", "CT, CBF, CBV, MTT, Tmax",
         lambda c: ", ".join(_NAMES.get(m, m) for m in c.train.data.modalities), "data/config.py:DataConfig"),
    Spec("PSPNet (method)", "dilated ResNet-50 (stem 64), output stride 8, bins 1-2-3-6; initializer BN + 1x1 "
         "conv 5->3", _pspnet, "nets/pspnet.py:PSPNet"),
    Spec("Pretrained backbone, two-stage fine-tuning (method)", "ImageNet ResNet-50, two stages", _pretraining,
         "systems/segmenter.py:Segmenter.on_epoch_start",
         "no weights ship and nothing is downloaded: the user names a local torchvision/timm ResNet state dict "
         "(model.pretrained), and a run without one says so in its log, summary and report; the stage-1 length "
         "(10 epochs) is this toolkit's choice"),
    Spec("Loss (method)", "focal, γ 1", _loss, "losses/segmentation.py:FocalLoss"),
    Spec("Losses compared (experiments)", "ce, weighted_ce, focal", lambda c: ", ".join(c.cmp.losses),
         "recipes/segmentation.py:LOSSES"),
    Spec("Weighted CE class weights (method)", "from the training lesion fraction f", _weights,
         "losses/segmentation.py:lesion_fraction_weights",
         "each class is weighted by the other's share (the normalised inverse frequency), so the rare lesion "
         "weighs more; weights read as each class's own share, (1 − f, f), would make the lesion cheaper still, "
         "the opposite of what a weighted CE against class imbalance is for"),
    Spec("Networks compared (experiments)", "pspnet, unet2d, unet3d, vnet", _archs,
         "recipes/segmentation.py:PAPER_ARCHITECTURES"),
    Spec("3D pooling (experiments)", "(2, 2, 1)", lambda c: ", ".join(sorted({str(tuple(s)) for s in
                                                                           c.unet3d.model.strides})),
         "configs/seg/unet3d_focal.yaml"),
    Spec("Batch sampling", "uniform", _sampling, "engine/config.py:RunConfig.lesion_fraction"),
    Spec("Cross-validation (experiments)", "5 folds by subject", lambda c: f"{c.train.run.folds} folds by subject",
         "data/splits.py"),
    Spec("Checkpoint selection", "on the held-out fold", lambda c: f"{c.train.run.selection}: an inner split of "
         "each fold's training subjects", "engine/protocol.py",
         "the toolkit never chooses on the scans it scores; run.selection: heldout reproduces the paper's "
         "protocol and every report labels it optimistic"),
]
