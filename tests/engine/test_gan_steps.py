"""The adversarial training parts the systems share (pix2pix's step, its image history)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import torch

from strokesynth.engine.gan_steps import ImagePool, conditional_gan_step
from strokesynth.engine.system import Runtime
from strokesynth.losses.adversarial import Adversarial


def _runtime() -> Runtime:
    torch.manual_seed(0)
    nets = {"generator": torch.nn.Sequential(torch.nn.Conv2d(2, 1, 3, padding=1), torch.nn.Tanh()),
            "discriminator": torch.nn.Conv2d(3, 1, 3, padding=1)}
    opts = {k: torch.optim.SGD(n.parameters(), lr=0.1) for k, n in nets.items()}
    return Runtime(SimpleNamespace(networks=nets, optimizers=opts))


def test_conditional_gan_step_updates_both_networks_and_reports_the_discriminator_loss_before_its_step():
    rt = _runtime()
    g, d = rt.net("generator"), rt.net("discriminator")
    x, y = torch.rand(2, 2, 8, 8) * 2 - 1, torch.rand(2, 1, 8, 8) * 2 - 1
    adversarial = Adversarial("lsgan")
    with torch.no_grad():
        fake = g(x)
        expect_d = 0.5 * adversarial.d(d(torch.cat([x, y], 1)), d(torch.cat([x, fake], 1)))
        expect_l1 = float((fake - y).abs().mean())
    before = {k: [p.detach().clone() for p in n.parameters()] for k, n in (("g", g), ("d", d))}
    loss_d, adv, l1 = conditional_gan_step(x, y, rt, adversarial, lambda_l1=100.0)
    assert abs(loss_d - float(expect_d)) < 1e-5
    assert abs(l1 - expect_l1) < 1e-5 and adv > 0
    for key, net in (("g", g), ("d", d)):
        assert any(not torch.equal(a, b) for a, b in zip(before[key], net.parameters(), strict=True)), key
    # the generator's update went through the discriminator with its gradients off
    assert all(not p.requires_grad for p in d.parameters())


def test_a_weight_of_ones_is_plain_l1():
    x, y = torch.rand(1, 2, 8, 8), torch.rand(1, 1, 8, 8)
    plain = conditional_gan_step(x, y, _runtime(), Adversarial("vanilla"), 10.0)
    weighted = conditional_gan_step(x, y, _runtime(), Adversarial("vanilla"), 10.0, torch.ones(1, 1, 8, 8))
    assert plain == weighted


def test_image_pool_fills_then_swaps_about_half_and_keeps_copies():
    assert ImagePool(0).query(t := torch.ones(3, 1, 2, 2)) is t
    random.seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).reshape(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)
    first.zero_()  # the pool holds copies
    assert [float(i) for i in pool.images] == [0.0, 1.0, 2.0, 3.0]
    new = torch.arange(100.0, 500.0).reshape(400, 1, 1, 1)
    out = pool.query(new).flatten()
    from_history = int((out != new.flatten()).sum())
    assert 150 < from_history < 250  # each image swapped with a stored one half of the time
    assert len(pool.images) == 4
