"""Losses against their formulas and independent references (PyTorch CE, MONAI focal, numpy Dice)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.losses import FocalLoss as MonaiFocal

from strokesynth.losses import lesion_fraction_weights, make_loss


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 2, 16, 16, generator=g)
    target = (torch.rand(3, 1, 16, 16, generator=g) < 0.1).long()
    return logits, target


def test_focal_gamma0_is_cross_entropy_exactly(batch):
    logits, target = batch
    ce = F.cross_entropy(logits, target[:, 0])
    assert torch.equal(make_loss("focal", gamma=0.0)(logits, target), ce)
    assert torch.equal(make_loss("ce")(logits, target), ce)


def test_focal_matches_formula_and_monai(batch):
    logits, target = batch
    for gamma in (0.5, 1.0, 2.0):
        ours = make_loss("focal", gamma=gamma)(logits, target)
        p = logits.softmax(1)
        onehot = F.one_hot(target[:, 0], 2).permute(0, 3, 1, 2).float()
        formula = -(onehot * (1 - p) ** gamma * p.log()).sum(1).mean()
        assert ours == pytest.approx(float(formula), rel=1e-5)
        monai = MonaiFocal(gamma=gamma, use_softmax=True, to_onehot_y=True)(logits, target)
        assert ours == pytest.approx(2 * float(monai), rel=1e-5)  # MONAI also averages over the 2 classes


def test_weighted_ce_uses_lesion_fraction(batch):
    logits, target = batch
    f = float(target.float().mean())
    w = lesion_fraction_weights(int(target.sum()), target.numel())
    assert w == pytest.approx([f, 1 - f])
    ours = make_loss("weighted_ce", class_weights=w)(logits, target)
    logp = logits.log_softmax(1).gather(1, target).squeeze(1)
    wt = torch.tensor(w)[target[:, 0]]
    assert ours == pytest.approx(float(-(wt * logp).sum() / wt.sum()), rel=1e-5)
    with pytest.raises(ValueError):
        lesion_fraction_weights(0, 100)


def test_dice_losses_match_formula(batch):
    logits, target = batch
    p = logits.softmax(1).numpy()
    onehot = F.one_hot(target[:, 0], 2).permute(0, 3, 1, 2).numpy().astype(float)
    axes = (2, 3)
    inter, denom = (p * onehot).sum(axes), (p + onehot).sum(axes)
    dice = 1 - (2 * inter + 1e-5) / (denom + 1e-5)  # MONAI's smoothing 1e-5
    assert float(make_loss("dice")(logits, target)) == pytest.approx(dice.mean(), rel=1e-5)
    w = 1 / np.maximum(onehot.sum(axes), 1e-12) ** 2
    w = np.where(np.isinf(w), 0, w)
    w = np.where(w == 0, w.max(axis=1, keepdims=True), w)  # MONAI replaces infinite weights by the max
    gd = 1 - (2 * (w * inter).sum(1) + 1e-5) / ((w * denom).sum(1) + 1e-5)
    assert float(make_loss("generalized_dice")(logits, target)) == pytest.approx(gd.mean(), rel=1e-4)


def test_losses_train_a_pixel_classifier():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 1, 12, 12, generator=g)
    y = (x > 1.0).long()
    for name in ("ce", "focal", "dice", "generalized_dice"):
        net = torch.nn.Conv2d(1, 2, 1)
        torch.manual_seed(0)
        opt = torch.optim.SGD(net.parameters(), lr=0.5)
        loss_fn = make_loss(name)
        first = float(loss_fn(net(x), y).detach())
        for _ in range(60):
            opt.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
        assert float(loss.detach()) < 0.7 * first, name


def test_weighted_ce_of_the_pseudo_dwi_paper_divides_by_the_sum_of_the_weight_map(batch):
    # L_WCE = Σ A·CE / Σ A (Wang et al., Eq. 12), not the plain mean of A·CE
    from strokesynth.losses.synthesis import WeightedCrossEntropy, lesion_weight_map

    logits, target = batch
    a = lesion_weight_map(target, 3.0, 20.0)
    ce = F.cross_entropy(logits, target[:, 0], reduction="none")
    expected = float((a[:, 0] * ce).sum() / a.sum())
    assert float(WeightedCrossEntropy(3.0, 20.0)(logits, target)) == pytest.approx(expected, rel=1e-5)
    assert float(WeightedCrossEntropy(3.0, 20.0)(logits, target)) != pytest.approx(float((a[:, 0] * ce).mean()),
                                                                                     rel=1e-3)


def test_wce_hgd_takes_the_configured_lesion_weight_and_distance(batch):
    from strokesynth.losses.synthesis import HardnessGeneralizedDice, WeightedCrossEntropy

    logits, target = batch
    hgd = float(HardnessGeneralizedDice()(logits, target))
    for w, d in ((1.5, 50.0), (4.0, 5.0)):
        got = float(make_loss("wce_hgd", lesion_weight=w, distance=d)(logits, target))
        assert got == pytest.approx(float(WeightedCrossEntropy(w, d)(logits, target)) + hgd, rel=1e-5)
    assert float(make_loss("wce_hgd", lesion_weight=4.0, distance=5.0)(logits, target)) != pytest.approx(
        float(make_loss("wce_hgd")(logits, target)), rel=1e-3)
