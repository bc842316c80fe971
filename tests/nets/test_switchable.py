"""Switchable normalisation against PyTorch's own BN / IN / LN, and SLNet's parameter counts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from strokesynth.nets.registry import NETWORKS
from strokesynth.nets.switchable import SwitchNorm


def _pick(layer: SwitchNorm, which: int) -> SwitchNorm:
    with torch.no_grad():
        for w in (layer.mean_weight, layer.var_weight):
            w.fill_(-1e4)
            w[which] = 1e4
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-0.5, 0.5)
    return layer


@pytest.mark.parametrize("dims", [2, 3])
def test_switchable_norm_reduces_to_instance_layer_and_batch_norm(dims):
    torch.manual_seed(0)
    shape = (3, 4, 6, 5) if dims == 2 else (3, 4, 6, 5, 2)
    x = torch.randn(shape) * 3 + 1
    refs = [nn.InstanceNorm2d(4, affine=True) if dims == 2 else nn.InstanceNorm3d(4, affine=True),
            nn.GroupNorm(1, 4), nn.BatchNorm2d(4) if dims == 2 else nn.BatchNorm3d(4)]
    for which, ref in enumerate(refs):
        sn = _pick(SwitchNorm(4), which)
        ref.weight.data.copy_(sn.weight.data)
        ref.bias.data.copy_(sn.bias.data)
        torch.testing.assert_close(sn(x), ref(x), atol=1e-4, rtol=1e-4)
    # the BN branch keeps running statistics like BatchNorm and uses them in eval mode
    bn, sn = (nn.BatchNorm2d(4) if dims == 2 else nn.BatchNorm3d(4)), _pick(SwitchNorm(4), 2)
    bn.weight.data.copy_(sn.weight.data)
    bn.bias.data.copy_(sn.bias.data)
    for _ in range(3):
        sn(x), bn(x)
    torch.testing.assert_close(sn.running_mean, bn.running_mean)
    torch.testing.assert_close(sn.running_var, bn.running_var)
    sn.eval(), bn.eval()
    torch.testing.assert_close(sn(x[:1]), bn(x[:1]), atol=1e-4, rtol=1e-4)


def test_switchable_norm_mixes_and_learns_its_weights():
    torch.manual_seed(0)
    sn = SwitchNorm(4)
    x = torch.randn(2, 4, 8, 8)
    y = sn(x)
    y.pow(2).mean().backward()
    assert sn.mean_weight.grad is not None and sn.var_weight.grad.abs().sum() > 0
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize(("name", "count"), [("unet", 31_037_698), ("slnet", 33_835_246),
                                             ("slnet_no_se", 31_037_806), ("slnet_no_sn", 33_835_138)])
def test_pseudo_dwi_paper_parameter_counts(name, count):
    # 64..1024 features, 3 inputs, 2 classes: the paper's 31.04 M U-Net and 33.84 M SLNet
    cfg = SimpleNamespace(channels=[64, 128, 256, 512, 1024], num_classes=2)
    net = NETWORKS.build(name, cfg, 3)
    assert sum(p.numel() for p in net.parameters()) == count
