"""Build the segmenter a :class:`ModelConfig` names, and run it on one case."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from strokesynth.data.datasets import SliceDataset, VolumeDataset
from strokesynth.data.volume import Volume
from strokesynth.engine.config import ModelConfig
from strokesynth.nets import PSPNet, UNet, VNet

VOLUMETRIC = ("unet3d", "vnet")


def build_model(cfg: ModelConfig, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """The network of ``cfg`` with ``in_channels`` inputs (the named pretrained backbone loaded
    unless ``pretrained`` is False, e.g. before loading a trained checkpoint)."""
    if cfg.name == "pspnet":
        model = PSPNet(in_channels, cfg.num_classes, cfg.depth, cfg.width, aux=cfg.aux_weight > 0)
        if cfg.pretrained and pretrained:
            model.load_pretrained(cfg.pretrained)
        return model
    if cfg.name == "unet2d":
        return UNet(2, in_channels, cfg.num_classes, cfg.channels, [2] * (len(cfg.channels) - 1))
    strides = [tuple(s) for s in cfg.strides] or [(2, 2, 1)] * (len(cfg.channels) - 1)
    if cfg.name == "unet3d":
        return UNet(3, in_channels, cfg.num_classes, cfg.channels, strides)
    if cfg.name == "vnet":
        convs = [1, 2] + [3] * (len(cfg.channels) - 2)
        return VNet(3, in_channels, cfg.num_classes, cfg.channels, convs[: len(cfg.channels)], strides)
    raise ValueError(f"unknown model {cfg.name!r}")


def autocast(device: str, amp: str) -> contextlib.AbstractContextManager:
    """Autocast context for ``amp`` (``none``, ``bf16``, ``fp16``) on ``device``."""
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def main_logits(out: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The main output of a model that may also return auxiliary logits."""
    return out[0] if isinstance(out, tuple) else out


@torch.no_grad()
def predict_case(model: nn.Module, dataset: SliceDataset | VolumeDataset, case_index: int, *, device: str = "cpu",
                 amp: str = "none", batch_size: int = 16) -> Volume:
    """Lesion probability of one case as a Volume on the case's grid, with its affine.

    Returns:
        ``(X, Y, Z)`` float32 probabilities of class 1.
    """
    model.eval()
    if isinstance(dataset, VolumeDataset):
        image = dataset[case_index]["image"][None].to(device)
        with autocast(device, amp):
            prob = main_logits(model(image)).float().softmax(1)[0, 1:2]
        return dataset.assemble(case_index, prob.cpu())
    items = dataset.slices_of(case_index)
    probs = []
    for lo in range(0, len(items), batch_size):
        batch = torch.stack([dataset[i]["image"] for i in items[lo:lo + batch_size]]).to(device)
        with autocast(device, amp):
            probs.append(main_logits(model(batch)).float().softmax(1)[:, 1:2].cpu())
    return dataset.assemble(case_index, torch.cat(probs))
