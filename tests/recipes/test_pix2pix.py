"""pix2pix networks: shapes, the 70x70 receptive field, test-time dropout, equivalence to pix2pix layers."""

import torch
from torch import nn

from strokesynth.nets import PatchDiscriminator, ResnetGenerator, count_parameters


def test_generator_shape_range_and_layers():
    g = ResnetGenerator(5, 1, ngf=8, n_blocks=2)
    y = g(torch.randn(2, 5, 64, 64))
    assert y.shape == (2, 1, 64, 64)
    assert y.abs().max() <= 1
    full = ResnetGenerator(5, 1)
    convs = [m for m in full.modules() if isinstance(m, nn.Conv2d)]
    ups = [m for m in full.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert convs[0].kernel_size == (7, 7) and convs[-1].kernel_size == (7, 7)
    assert [c.stride for c in convs[1:3]] == [(2, 2), (2, 2)]
    assert len(convs) == 4 + 2 * 9 and len(ups) == 2
    assert all(u.stride == (2, 2) for u in ups)
    # pix2pix resnet_9blocks with 3 -> 3 channels: 11,378,179 parameters (its training log prints 11.378 M)
    assert count_parameters(ResnetGenerator(3, 3)) == 11_378_179


def test_generator_dropout_is_noise_at_test_time_unless_switched_off():
    g = ResnetGenerator(5, 1, ngf=8, n_blocks=2).eval()
    x = torch.randn(1, 5, 32, 32)
    with torch.no_grad():
        assert not torch.equal(g(x), g(x))
        g.set_test_dropout(False)
        assert torch.equal(g(x), g(x))
    g.train()
    assert not torch.equal(g(x), g(x))  # training always drops


def test_patch_discriminator_30x30_and_70x70_receptive_field():
    d = PatchDiscriminator(6)
    assert d(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    assert d.receptive_field() == 70
    # measured: gradient footprint of one logit (no norm, so nothing couples distant pixels)
    probe = PatchDiscriminator(6, ndf=8, norm="none")
    x = torch.randn(1, 6, 256, 256, requires_grad=True)
    probe(x)[0, 0, 15, 15].backward()
    nz = x.grad.abs().sum((0, 1)).nonzero()
    extent = (nz.max(0).values - nz.min(0).values + 1).tolist()
    assert extent == [70, 70]
    assert PatchDiscriminator(6, n_layers=1).receptive_field() == 16
    assert PatchDiscriminator(6, n_layers=2).receptive_field() == 34


def _pix2pix_nlayer(in_ch: int, ndf: int, n_layers: int) -> nn.Sequential:
    """pix2pix's NLayerDiscriminator with instance norm, written out layer by layer."""
    layers = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
    mult = 1
    for n in range(1, n_layers + 1):
        prev, mult = mult, min(2 ** n, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2 if n < n_layers else 1, 1, bias=True),
                   nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2)]
    layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
    return nn.Sequential(*layers)


def test_patch_discriminator_computes_the_pix2pix_function():
    torch.manual_seed(0)
    ours = PatchDiscriminator(6, ndf=16)
    ref = _pix2pix_nlayer(6, 16, 3)
    ours_convs = [m for m in ours.modules() if isinstance(m, nn.Conv2d)]
    ref_convs = [m for m in ref.modules() if isinstance(m, nn.Conv2d)]
    assert len(ours_convs) == len(ref_convs) == 5
    with torch.no_grad():
        for a, b in zip(ours_convs, ref_convs, strict=True):
            b.weight.copy_(a.weight)
            if a.bias is not None:
                b.bias.copy_(a.bias)
            else:
                b.bias.normal_()  # a bias before affine-free instance norm cancels
    x = torch.randn(2, 6, 128, 128)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-4, rtol=1e-4)
