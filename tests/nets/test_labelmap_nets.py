"""Networks of the label-map -> DWI system: Pix2Pix U-Net, SPADE, the 3D lesion GAN, the 3D U-Net."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from strokesynth.losses.adversarial import gradient_penalty
from strokesynth.nets import count_parameters
from strokesynth.nets.lesion_gan import LesionCritic, LesionGenerator
from strokesynth.nets.pix2pix import NoiseDropout, UnetGenerator
from strokesynth.nets.registry import NETWORKS
from strokesynth.nets.spade import SPADEGenerator


def test_platscher_unet3d_parameters_and_dropout():
    cfg = SimpleNamespace(channels=[16, 32, 64, 128, 256], strides=[[2, 2, 2]] * 4, norm="batch", num_classes=2,
                          dropout=0.02)
    net = NETWORKS.build("unet3d", cfg, 1)
    assert count_parameters(net) == 5_646_402  # the paper's 5.65 M
    for block in [*net.enc, *net.dec]:  # after both convs of each of the 9 double convs
        drops = [m for m in block if isinstance(m, nn.Dropout)]
        assert len(drops) == 2 and all(d.p == 0.02 for d in drops)
    assert net(torch.zeros(1, 1, 32, 32, 16)).shape == (1, 2, 32, 32, 16)
    # the paper's encoder has no normalisation (convs then carry biases); the decoder keeps batch norm
    paper = NETWORKS.build("unet3d", SimpleNamespace(**vars(cfg), encoder_norm="none"), 1)
    assert not any(isinstance(m, nn.BatchNorm3d) for block in paper.enc for m in block)
    assert all(any(isinstance(m, nn.BatchNorm3d) for m in block) for block in paper.dec)
    assert all(m.bias is not None for block in paper.enc for m in block if isinstance(m, nn.Conv3d))
    assert count_parameters(paper) == 5_645_410 and paper(torch.zeros(1, 1, 32, 32, 16)).shape == (1, 2, 32, 32, 16)


def test_unet_generator_matches_pix2pix_layout():
    g = UnetGenerator(12, 1, 8, num_downs=7)
    out = g(torch.zeros(2, 12, 128, 128))
    assert out.shape == (2, 1, 128, 128) and out.abs().max() <= 1
    assert sum(isinstance(m, NoiseDropout) for m in g.modules()) == 2  # unet_128: two 8x decoder blocks
    assert sum(isinstance(m, NoiseDropout) for m in UnetGenerator(3, 1, 8, num_downs=8).modules()) == 3
    x = torch.randn(1, 12, 128, 128)
    g.eval()
    assert torch.equal(g(x), g(x))  # no dropout at test unless asked (pix2pix's noise)
    g.set_test_dropout(True)
    assert not torch.equal(g(x), g(x))
    with pytest.raises(ValueError, match="divisible by 128"):
        g(torch.zeros(1, 12, 96, 96))


def test_spade_generator_uses_the_label_map():
    torch.manual_seed(0)
    g = SPADEGenerator(4, 1, [16, 8, 8], latent=8, hidden=8).eval()
    assert g.size == 32
    z = torch.randn(1, 8)
    a = torch.zeros(1, 4, 32, 32)
    a[:, 0] = 1
    b = torch.zeros(1, 4, 32, 32)
    b[:, 0, :, :16] = 1
    b[:, 3, :, 16:] = 1
    ya, yb = g(a, z), g(b, z)
    assert ya.shape == (1, 1, 32, 32)
    diff = (ya - yb).abs()
    # instance norm spreads a change everywhere, but most of it lies where the map changed
    assert diff[..., 16:].mean() > 0.05 and diff[..., 16:].mean() > 1.3 * diff[..., :16].mean()
    with pytest.raises(ValueError, match="makes 32 px images"):
        g(torch.zeros(1, 4, 64, 64))


def test_lesion_gan_anisotropic_grid_and_3d_gradient_penalty():
    g = LesionGenerator((32, 32, 8), [16, 8, 8], latent=16).reset_output()
    assert g.factors == [(2, 2, 2), (2, 2, 1), (2, 2, 1)]
    masks = g.sample(3, generator=torch.Generator().manual_seed(0))
    assert masks.shape == (3, 32, 32, 8) and masks.dtype == torch.bool
    assert masks.float().mean() < 0.05  # a fresh generator starts from nearly empty masks
    c = LesionCritic((32, 32, 8), [4, 8, 16])
    real = torch.rand(2, 1, 32, 32, 8) * 2 - 1
    assert c(real).shape == (2, 1)
    gp = gradient_penalty(c, real, g(torch.randn(2, 16)))
    assert gp.ndim == 0 and gp.requires_grad
    with pytest.raises(ValueError, match="powers of two"):
        LesionGenerator((32, 32, 6))
    plain = LesionGenerator((32, 32, 8), [16, 8, 8], latent=16, norm="none")
    assert not any(isinstance(m, (nn.InstanceNorm3d, nn.BatchNorm3d)) for m in plain.modules())
    with pytest.raises(ValueError, match="unknown norm"):
        LesionGenerator((32, 32, 8), norm="group")
