"""Counting what a network costs: parameters and floating-point operations of a forward pass."""

from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode


def forward_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs (multiply and add counted separately) of ``model(*inputs)``, from PyTorch's
    ``FlopCounterMode`` (convolutions, matmuls; norms and activations are not counted)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    return int(counter.get_total_flops())



class _PeakMemory(TorchDispatchMode):
    """Tracks the bytes of live tensors that ops create (views share their base's bytes)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0

    def _freed(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's signature
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t._base is None and not t.is_meta:
                nbytes = t.numel() * t.element_size()
                self.live += nbytes
                weakref.finalize(t, self._freed, nbytes)
        self.peak = max(self.peak, self.live)
        return out


def peak_forward_bytes(model: nn.Module, in_channels: int, height: int, width: int, *, probe: int = 64) -> int:
    """Estimated peak bytes of one no-grad forward pass of a (1, in_channels, height, width) input
    (float32), before allocating it: the live tensors are tracked through a pass at ``probe`` px,
    their peak scaled by the pixel count (a convolutional network's activations grow with it),
    plus the input and the parameters."""
    tracker = _PeakMemory()
    x = torch.zeros(1, in_channels, probe, probe)
    with torch.no_grad(), tracker:
        model(x)
    scale = (height * width) / float(probe * probe)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return int((tracker.peak + x.numel() * x.element_size()) * scale + params)
