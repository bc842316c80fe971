"""PSPNet (Zhao et al. 2017) with the initializer layer of Abulnaga & Rubin (ISLES 2018)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from strokesynth.nets.resnet import DilatedResNet, load_backbone_weights


def _cbr(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Initializer(nn.Module):
    """BatchNorm over the N input channels, then a learned 1x1 conv N -> 3, so RGB weights fit."""

    def __init__(self, in_channels: int, out_channels: int = 3) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.proj = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.norm(x))


class PyramidPooling(nn.Module):
    """Average-pool to each bin size, 1x1 conv (C / len(bins) channels), upsample, concat with the input.

    The pooled branches use a biased conv + ReLU without BatchNorm: the 1x1 bin has one value
    per channel, which BatchNorm cannot normalise at batch size 1.
    """

    def __init__(self, in_channels: int, bins: Sequence[int] = (1, 2, 3, 6)) -> None:
        super().__init__()
        red = in_channels // len(bins)
        self.bins = tuple(bins)
        self.stages = nn.ModuleList(nn.Sequential(nn.Conv2d(in_channels, red, 1), nn.ReLU(inplace=True)) for _ in bins)
        self.out_channels = in_channels + red * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        feats = [x] + [F.interpolate(stage(F.adaptive_avg_pool2d(x, b)), size, mode="bilinear", align_corners=False)
                       for b, stage in zip(self.bins, self.stages, strict=True)]
        return torch.cat(feats, 1)


class PSPNet(nn.Module):
    """Initializer -> dilated ResNet (output stride 8) -> pyramid pooling -> head, upsampled x8.

    Args:
        in_channels: input channels (5 for CT, CBF, CBV, MTT, Tmax; 6 with a generated DWI).
        num_classes: output classes (2: background, core).
        depth: ResNet depth, 50 or 101.
        width: backbone stem width (64 = standard; smaller for CPU tests).
        bins: pyramid bin sizes.
        aux: also return the auxiliary head's logits (on layer 3) in training mode.
        dropout: dropout before the classifiers.

    Shapes: ``(B, in_channels, H, W)`` -> logits ``(B, num_classes, H, W)``; in training mode
    with ``aux`` a tuple ``(main, aux)``.
    """

    def __init__(self, in_channels: int = 5, num_classes: int = 2, depth: int = 50, width: int = 64,
                 bins: Sequence[int] = (1, 2, 3, 6), aux: bool = True, dropout: float = 0.1) -> None:
        super().__init__()
        self.initializer = Initializer(in_channels, 3)
        self.backbone = DilatedResNet(depth, width, 3)
        c3, c4 = self.backbone.out_channels
        self.ppm = PyramidPooling(c4, bins)
        mid = max(c4 // 4, 8)
        self.head = nn.Sequential(_cbr(self.ppm.out_channels, mid, 3), nn.Dropout2d(dropout), nn.Conv2d(mid, num_classes, 1))
        self.aux_head = (nn.Sequential(_cbr(c3, max(c3 // 4, 8), 3), nn.Dropout2d(dropout),
                                       nn.Conv2d(max(c3 // 4, 8), num_classes, 1)) if aux else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        size = x.shape[-2:]
        c3, c4 = self.backbone(self.initializer(x))
        out = F.interpolate(self.head(self.ppm(c4)), size, mode="bilinear", align_corners=False)
        if self.training and self.aux_head is not None:
            return out, F.interpolate(self.aux_head(c3), size, mode="bilinear", align_corners=False)
        return out

    def load_pretrained(self, path: str | os.PathLike) -> list[str]:
        """Load backbone weights from a local torchvision/timm ResNet state dict."""
        return load_backbone_weights(self.backbone, path)

    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters not in the backbone (initializer, pyramid pooling, heads)."""
        backbone = {id(p) for p in self.backbone.parameters()}
        return [p for p in self.parameters() if id(p) not in backbone]

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Stage 1 of fine-tuning: train only the new layers (backbone weights and BN statistics fixed)."""
        for p in self.backbone.parameters():
            p.requires_grad_(not frozen)
        self._backbone_frozen = frozen

    def train(self, mode: bool = True) -> PSPNet:
        super().train(mode)
        if mode and getattr(self, "_backbone_frozen", False):
            self.backbone.eval()  # keep pretrained BN statistics while the backbone is frozen
        return self


def fine_tuning_stages(model: PSPNet, new_lr: float = 1e-2, all_lr: float = 1e-4) -> list[dict]:
    """The two-stage schedule: new layers only at ``new_lr`` (backbone frozen), then all at ``all_lr``.

    Returns one optimizer parameter-group list per stage; call ``model.freeze_backbone(True)``
    for stage 1 and ``False`` for stage 2.
    """
    return [{"params": model.new_parameters(), "lr": new_lr, "freeze_backbone": True},
            {"params": list(model.parameters()), "lr": all_lr, "freeze_backbone": False}]
