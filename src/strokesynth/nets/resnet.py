"""Dilated ResNet-50/101 backbone with torchvision/timm parameter names (so their weights load).

Output stride 8: layers 3 and 4 keep the resolution and use dilation 2 and 4 instead
(torchvision's ``replace_stride_with_dilation=[False, True, True]``). ``width`` scales every
channel count (64 = the standard network; small widths give tiny CPU variants).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from strokesynth.errors import ConfigError, DataError

DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride, dilation) -> 1x1 (x4 channels) with a projection shortcut when needed."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class DilatedResNet(nn.Module):
    """ResNet trunk returning the layer-3 and layer-4 features, both at 1/8 of the input.

    Args:
        depth: 50 or 101.
        width: channels of the stem (64 in the standard network).
        in_channels: input channels (3 for RGB weights).

    Shapes: ``(B, in_channels, H, W)`` -> layer 3 ``(B, 16 * width, H/8, W/8)`` and layer 4
    ``(B, 32 * width, H/8, W/8)``.
    """

    def __init__(self, depth: int = 50, width: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ConfigError("depth", f"ResNet depth must be one of {sorted(DEPTHS)}, got {depth}")
        self.width = width
        self.depth = depth
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.inplanes = width
        blocks = DEPTHS[depth]
        self.layer1 = self._layer(width, blocks[0])
        self.layer2 = self._layer(width * 2, blocks[1], stride=2)
        self.layer3 = self._layer(width * 4, blocks[2], dilation=2)
        self.layer4 = self._layer(width * 8, blocks[3], dilation=4)
        self.out_channels = (width * 16, width * 32)

    def _layer(self, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        # as torchvision: the first block of a dilated stage uses the previous dilation
        first = 1 if dilation == 1 else dilation // 2
        layers = [Bottleneck(self.inplanes, planes, stride, first, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes, 1, dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c3 = self.layer3(self.layer2(self.layer1(x)))
        return c3, self.layer4(c3)


def load_backbone_weights(backbone: DilatedResNet, path: str | os.PathLike) -> list[str]:
    """Load a torchvision- or timm-style ResNet state dict from a local file into ``backbone``.

    The classifier (``fc.*``) is ignored. Returns the keys that were loaded. Raises a
    :class:`DataError` naming the file on missing or mismatched keys or shapes.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(path, "weights file not found") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling/format error is a bad file for the user
        raise DataError(path, f"not a PyTorch state dict ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DataError(path, "expected a state dict (a mapping of parameter names to tensors)")
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise DataError(path, f"keys do not match a ResNet-{backbone.depth} backbone: "
                        f"{len(missing)} missing (e.g. {missing[:2]}), {len(unexpected)} unexpected "
                        f"(e.g. {unexpected[:2]})")
    bad = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        k = bad[0]
        raise DataError(path, f"{len(bad)} shape mismatch(es), e.g. {k}: file {tuple(state[k].shape)} vs "
                        f"model {tuple(own[k].shape)} (width {backbone.width}?)")
    backbone.load_state_dict(state)
    return sorted(state)
