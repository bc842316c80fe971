"""Counting what a network costs: parameters and floating-point operations of a forward pass."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def forward_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs (multiply and add counted separately) of ``model(*inputs)``, from PyTorch's
    ``FlopCounterMode`` (convolutions, matmuls; norms and activations are not counted)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    return int(counter.get_total_flops())
