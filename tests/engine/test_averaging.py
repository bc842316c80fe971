"""The moving average of a network's weights against a hand-written reference."""

from __future__ import annotations

import torch
from torch import nn

from strokesynth.engine.averaging import averaged_copy, update_average


def test_average_follows_the_warm_up_then_the_decay_and_copies_buffers():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    avg = averaged_copy(net)
    assert not any(p.requires_grad for p in avg.parameters())
    ref = [p.detach().clone() for p in net.parameters()]
    used = []
    for k in range(100):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        net.train()(torch.randn(5, 3))  # moves the batch-norm running stats
        used.append(update_average(avg, net, 0.9, k))
        d = min(0.9, (1 + k) / (10 + k))
        ref = [d * r + (1 - d) * p.detach() for r, p in zip(ref, net.parameters(), strict=True)]
    assert used[0] == 0.1 and used[-1] == 0.9 and used == sorted(used)
    for a, r in zip(avg.parameters(), ref, strict=True):
        torch.testing.assert_close(a, r)
    for a, b in zip(avg.buffers(), net.buffers(), strict=True):
        assert torch.equal(a, b)
