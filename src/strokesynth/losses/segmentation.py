"""Segmentation losses of the published systems.

All take logits ``(B, C, *spatial)`` and integer labels ``(B, *spatial)`` or ``(B, 1, *spatial)``
and return a scalar (mean over voxels, or over the batch for the overlap losses).

- :class:`CrossEntropy`: plain or class-weighted cross entropy (``torch.nn.functional``).
- :func:`lesion_fraction_weights`: the weighted-CE weights of Abulnaga & Rubin, background
  ``f`` and lesion ``1 - f`` with ``f`` the lesion fraction of the training voxels.
- :class:`FocalLoss`: ``-Σ_c w_c (1 - p_c)^γ y_c log p_c`` averaged over voxels (Lin et al.);
  ``γ = 0`` without weights is exactly cross entropy. MONAI's ``FocalLoss`` averages over the
  classes too (1/C of this), so it is used as a test reference, not here.
- :func:`dice_loss`, :func:`generalized_dice_loss`: MONAI's soft Dice and generalized Dice
  (Sudre et al., weights 1 / volume²), with softmax and one-hot labels.
- ``hgd``, ``ce_hgd``, ``wce_hgd``: the pseudo-DWI paper's hardness-aware generalized Dice
  −log(1 − GD), alone, with CE, and with CE weighted by the lesion weight map A (its L_s); see
  :mod:`strokesynth.losses.synthesis`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss, GeneralizedDiceLoss
from torch import nn

from strokesynth.registry import Registry


def _labels(target: torch.Tensor) -> torch.Tensor:
    if target.dim() >= 2 and target.shape[1] == 1:
        target = target[:, 0]
    return target.long()


def lesion_fraction_weights(lesion_voxels: int, total_voxels: int) -> list[float]:
    """Class weights ``[f, 1 - f]`` (background, lesion) with ``f`` the lesion voxel fraction."""
    if total_voxels <= 0 or not 0 < lesion_voxels < total_voxels:
        raise ValueError(f"need 0 < lesion voxels ({lesion_voxels}) < total ({total_voxels})")
    f = lesion_voxels / total_voxels
    return [f, 1.0 - f]


class CrossEntropy(nn.Module):
    """Cross entropy, optionally with class weights ``(C,)`` (weighted mean, as PyTorch)."""

    def __init__(self, weight: Sequence[float] | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", torch.tensor(weight, dtype=torch.float32) if weight is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(logits.dtype) if self.weight is not None else None
        return F.cross_entropy(logits, _labels(target), weight=w)


class FocalLoss(nn.Module):
    """Multi-class focal loss with focusing parameter ``gamma`` and optional class weights."""

    def __init__(self, gamma: float = 1.0, weight: Sequence[float] | None = None) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.register_buffer("weight", torch.tensor(weight, dtype=torch.float32) if weight is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels = _labels(target)
        if self.gamma == 0:  # the same computation as cross entropy, so the values are identical
            w = self.weight.to(logits.dtype) if self.weight is not None else None
            return F.cross_entropy(logits, labels, weight=w)
        logp = F.log_softmax(logits.float(), dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)
        loss = -((1 - logp.exp()) ** self.gamma) * logp
        if self.weight is not None:
            w = self.weight[labels]
            return (loss * w).sum() / w.sum()
        return loss.mean()


def dice_loss() -> nn.Module:
    """MONAI soft Dice loss over all classes (softmax, one-hot labels ``(B, 1, ...)``)."""
    return DiceLoss(to_onehot_y=True, softmax=True)


def generalized_dice_loss() -> nn.Module:
    """MONAI generalized Dice loss (weights 1 / class volume²; softmax, one-hot labels ``(B, 1, ...)``)."""
    return GeneralizedDiceLoss(to_onehot_y=True, softmax=True)


#: segmentation losses by name; each builder takes ``gamma`` and ``class_weights`` keywords
LOSSES: Registry = Registry("loss")
LOSSES.register("ce")(lambda *, gamma=1.0, class_weights=None: CrossEntropy())
LOSSES.register("focal")(lambda *, gamma=1.0, class_weights=None: FocalLoss(gamma, class_weights))
LOSSES.register("dice")(lambda *, gamma=1.0, class_weights=None: dice_loss())
LOSSES.register("generalized_dice")(lambda *, gamma=1.0, class_weights=None: generalized_dice_loss())


@LOSSES.register("hgd")
def _hgd(*, gamma: float = 1.0, class_weights: Sequence[float] | None = None) -> nn.Module:
    from strokesynth.losses.synthesis import HardnessGeneralizedDice

    return HardnessGeneralizedDice()


@LOSSES.register("ce_hgd")
def _ce_hgd(*, gamma: float = 1.0, class_weights: Sequence[float] | None = None) -> nn.Module:
    from strokesynth.losses.synthesis import HardnessGeneralizedDice, Sum

    return Sum(CrossEntropy(), HardnessGeneralizedDice())


@LOSSES.register("wce_hgd")
def _wce_hgd(*, gamma: float = 1.0, class_weights: Sequence[float] | None = None, lesion_weight: float = 1.5,
             distance: float = 50.0) -> nn.Module:
    # the pseudo-DWI paper's L_s: CE weighted per voxel by the lesion weight map A (w, D) + L_HGD
    from strokesynth.losses.synthesis import HardnessGeneralizedDice, Sum, WeightedCrossEntropy

    return Sum(WeightedCrossEntropy(lesion_weight, distance), HardnessGeneralizedDice())


@LOSSES.register("weighted_ce")
def _weighted_ce(*, gamma: float = 1.0, class_weights: Sequence[float] | None = None) -> nn.Module:
    if class_weights is None:
        raise ValueError("weighted_ce needs class weights (see lesion_fraction_weights)")
    return CrossEntropy(class_weights)


class Compound(nn.Module):
    """``main(logits, y) + dice_weight * soft Dice(logits, y)``: nnU-Net's CE + Dice pairing for any loss.

    The Dice term is MONAI's soft Dice of the lesion class only (no background), so an empty
    prediction on a lesion slice costs 1 whatever the lesion's size.
    """

    def __init__(self, main: nn.Module, dice_weight: float) -> None:
        super().__init__()
        self.main = main
        self.dice_weight = float(dice_weight)
        self.dice = DiceLoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels = target if target.dim() == logits.dim() else target.unsqueeze(1)
        return self.main(logits, target) + self.dice_weight * self.dice(logits.float(), labels)


def make_loss(name: str, *, gamma: float = 1.0, class_weights: Sequence[float] | None = None,
              dice_weight: float = 0.0, lesion_weight: float = 1.5, distance: float = 50.0) -> nn.Module:
    """A loss by name (``LOSSES.names()``), plus ``dice_weight`` x soft lesion Dice when > 0;
    ``weighted_ce`` needs ``class_weights``; ``wce_hgd`` takes the weight map's ``lesion_weight``
    w and ``distance`` D (pixels)."""
    extra = {"lesion_weight": lesion_weight, "distance": distance} if name == "wce_hgd" else {}
    main = LOSSES.build(name, gamma=gamma, class_weights=class_weights, **extra)
    return Compound(main, dice_weight) if dice_weight > 0 else main
