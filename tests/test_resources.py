"""What the machine has, and the estimates that let a command refuse a size before allocating it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from strokesynth.errors import ConfigError
from strokesynth.nets.profile import peak_forward_bytes
from strokesynth.resources import available_memory, require_memory


def test_require_memory_refuses_more_than_the_machine_has():
    have = available_memory()
    assert have > 2**26
    require_memory(have * 0.1, "--size", "a small thing")
    with pytest.raises(ConfigError, match="needs about .* GiB; this machine has"):
        require_memory(have * 2, "--size", "a forward pass")


def test_peak_forward_estimate_scales_with_pixels_and_bounds_the_real_peak():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(16, 1, 1))
    small, large = peak_forward_bytes(net, 2, 64, 64), peak_forward_bytes(net, 2, 256, 256)
    params = sum(p.numel() * 4 for p in net.parameters())
    assert (large - params) == pytest.approx(16 * (small - params), rel=1e-6)
    # at least the two 16-channel float32 maps that live together at the peak, at most every output
    assert 2 * 16 * 256 * 256 * 4 <= large - params <= 6 * 16 * 256 * 256 * 4
