"""Synthesis losses of the pseudo-DWI system (Wang, Song et al.): lesion-weighted L2, context loss,
and the segmentation losses that share its weight map (voxel-weighted CE, hardness-aware GD).

The weight map A (:func:`lesion_weight_map`) puts ``w`` (1.5) on lesion pixels and
``0.5 + e^(-d/D) / (e^(-d/D) + 1)`` elsewhere, with ``d`` the Euclidean distance to the nearest
lesion pixel **in pixels of the network's in-plane grid** (2D, per slice) and ``D`` = 50: 1.0 next
to the lesion, falling to 0.5 far from it. A slice without lesion is everywhere "far": 0.5.

Reduction. The paper writes the pixel term as a norm, ℓ_l = ‖A·(I_g − I_d)‖₂, and ℓ_h as an L1
norm over Φc's 16 features; ``reduction="norm"`` (the default) takes them so, per image, averaged
over the batch. That scale matters in end-to-end training, where L_g is added to the
segmentation loss: per-pixel means are about sqrt(H·W) times smaller (a 128x128 image: 128x), and
then the segmentation loss dominates and turns the generator into a lesion detector (measured on
the phantom: held-out pseudo-DWI SSIM 0.07, lesion contrast 149 % of the real DWI's).
``reduction="mean"`` gives per-pixel means (squared error for L2). For ``l1`` the norm form is the
per-image L1 norm divided by sqrt(H·W), so that an error of constant size e costs e·sqrt(H·W) in
both L1 and L2 and the rows of Table 1 share one scale.

Shapes: images ``(B, 1, H, W)`` in [0, 1]; labels ``(B, 1, H, W)`` or ``(B, H, W)`` integers;
logits ``(B, 2, H, W)``; maps ``(B, 1, H, W)``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import GeneralizedDiceLoss
from scipy import ndimage
from torch import nn

SYNTHESIS_LOSSES = ("l1", "l2", "wl2", "wl2_ctx")


def lesion_weight_map(label: torch.Tensor, w: float = 1.5, d0: float = 50.0) -> torch.Tensor:
    """The weight map A of ``label`` ``(B, [1,] H, W)`` -> ``(B, 1, H, W)`` float32 (see module docstring)."""
    lab = label[:, 0] if label.dim() == 4 else label
    masks = lab.detach().cpu().numpy() > 0
    out = np.empty(masks.shape, np.float32)
    for i, m in enumerate(masks):
        if not m.any():
            out[i] = 0.5
            continue
        d = ndimage.distance_transform_edt(~m)
        e = np.exp(-d / d0)
        out[i] = np.where(m, w, 0.5 + e / (e + 1.0))
    return torch.from_numpy(out)[:, None].to(label.device)


def weighted_l2(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                reduction: str = "norm") -> torch.Tensor:
    """‖A·(I_g − I_d)‖₂ per image, batch mean (``norm``), or ``mean((A·(I_g − I_d))²)`` (``mean``); A = 1 if None."""
    diff = pred.float() - target.float()
    if weight is not None:
        diff = diff * weight
    if reduction == "mean":
        return diff.pow(2).mean()
    return diff.flatten(1).pow(2).sum(1).clamp_min(1e-12).sqrt().mean()


def context_loss(encoder: nn.Module, pred: torch.Tensor, target: torch.Tensor, reduction: str = "norm"
                 ) -> torch.Tensor:
    """ℓ_h = ‖Φc(I_g) − Φc(I_d)‖₁ per image, batch mean (``norm``) or feature mean (``mean``);
    the target's features are detached."""
    with torch.no_grad():
        ref = encoder(target.float())
    diff = (encoder(pred.float()) - ref).abs()
    return diff.mean() if reduction == "mean" else diff.sum(1).mean()


def synthesis_loss(kind: str, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                   *, encoder: nn.Module | None = None, gamma: float = 1.2, reduction: str = "norm") -> torch.Tensor:
    """One of Table 1's pixel losses: ``l1``, ``l2``, ``wl2`` (A-weighted L2) or ``wl2_ctx``
    (``wl2 + gamma * context_loss``, the paper's L_g); ``reduction`` as the module docstring says."""
    if reduction not in ("norm", "mean"):
        raise ValueError(f"reduction must be 'norm' or 'mean', not {reduction!r}")
    if kind == "l1":
        diff = (pred.float() - target.float()).abs()
        return diff.mean() if reduction == "mean" else (diff.flatten(1).sum(1) / diff[0].numel() ** 0.5).mean()
    if kind == "l2":
        return weighted_l2(pred, target, reduction=reduction)
    if kind not in ("wl2", "wl2_ctx"):
        raise ValueError(f"unknown synthesis loss {kind!r} (choose from {', '.join(SYNTHESIS_LOSSES)})")
    loss = weighted_l2(pred, target, weight, reduction)
    if kind == "wl2_ctx":
        if encoder is None:
            raise ValueError("wl2_ctx needs the context encoder")
        loss = loss + gamma * context_loss(encoder, pred, target, reduction)
    return loss


class HardnessGeneralizedDice(nn.Module):
    """L_HGD = −log(1 − L_GD), with L_GD MONAI's generalized Dice loss (weights 1 / (Σ Y)², Sudre)
    over the batch: harder (worse-overlapping) batches get a steeper gradient."""

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.gd = GeneralizedDiceLoss(to_onehot_y=True, softmax=True, batch=True)
        self.eps = eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels = target if target.dim() == logits.dim() else target.unsqueeze(1)
        gd = self.gd(logits.float(), labels)
        return -torch.log((1 - gd).clamp_min(self.eps))


class WeightedCrossEntropy(nn.Module):
    """Cross entropy weighted per voxel by the lesion weight map A of the target: the paper's L_WCE
    (Wang et al., Eq. 12), Σ A·CE / Σ A over the batch's pixels (a weighted mean, so the loss
    keeps the scale of plain CE whatever w and D are)."""

    def __init__(self, w: float = 1.5, d0: float = 50.0) -> None:
        super().__init__()
        self.w, self.d0 = w, d0

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        labels = target[:, 0] if target.dim() == logits.dim() else target
        a = lesion_weight_map(labels, self.w, self.d0) if weight is None else weight
        ce = F.cross_entropy(logits.float(), labels.long(), reduction="none")
        a = a[:, 0].to(ce.dtype)
        return (a * ce).sum() / a.sum().clamp_min(1e-12)


class Sum(nn.Module):
    """The sum of several losses of ``(logits, target)``."""

    def __init__(self, *parts: nn.Module) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(p(logits, target) for p in self.parts)
