"""The segmenter system: a weighted-CE checkpoint restores with the weights of its own fold,
kept in the checkpoint's measured record, not in its config."""

from __future__ import annotations

import pytest
import torch

from strokesynth.data.config import make_dataset
from strokesynth.engine.checkpoint import load_system
from strokesynth.engine.loop import fit
from strokesynth.systems.segmenter import Segmenter, TrainConfig


def test_weighted_ce_checkpoint_restores_with_its_class_weights(tmp_path, toy_cases):
    cfg = TrainConfig(name="unet2d")
    cfg.data.size = (32, 32)
    cfg.model.name, cfg.model.channels = "unet2d", [4, 8]
    cfg.loss.name = "weighted_ce"
    cfg.run.epochs, cfg.run.steps_per_epoch, cfg.run.batch_size, cfg.run.selection = 1, 1, 2, "last"
    train = make_dataset(toy_cases[:3], cfg.data, seed=0, train=True)
    fit(lambda: Segmenter(cfg, train_dataset=train), train, None, tmp_path / "run", cfg.run, seed=0)
    assert cfg.loss.class_weights is None  # the caller's config is not changed (next fold, other weights)
    system = load_system(tmp_path / "run" / "best.pt")
    assert system.config.loss.class_weights is None  # the config stays as resolved
    w = system.measured["class_weights"]
    assert w is not None and len(w) == 2 and 0 < w[0] < 0.5 < w[1] < 1 and sum(w) == pytest.approx(1.0)
    logits, target = torch.randn(2, 2, 8, 8), torch.randint(0, 2, (2, 8, 8))
    assert float(system.loss(logits, target)) > 0


def test_class_weights_set_in_the_config_are_used_as_given(toy_cases):
    cfg = TrainConfig(name="unet2d")
    cfg.data.size = (32, 32)
    cfg.model.name, cfg.model.channels = "unet2d", [4, 8]
    cfg.loss.name, cfg.loss.class_weights = "weighted_ce", [0.3, 0.7]
    train = make_dataset(toy_cases[:3], cfg.data, seed=0, train=True)
    system = Segmenter(cfg, train_dataset=train)
    assert "class_weights" not in system.measured
    assert system.loss.weight.tolist() == pytest.approx([0.3, 0.7])
