"""The CT-to-MR pix2pix system with either of pix2pix's generators (``--netG resnet | unet``)."""

from __future__ import annotations

import pytest
import torch

from strokesynth.engine.loop import fit
from strokesynth.nets.pix2pix import ResnetGenerator, UnetGenerator
from strokesynth.systems.pix2pix import GANConfig, Pix2Pix, load_generator, synthesis_dataset, synthesize_cases


@pytest.mark.parametrize("name, cls", [("resnet", ResnetGenerator), ("unet", UnetGenerator)])
def test_pix2pix_trains_restores_and_synthesizes_with_either_generator(tmp_path, toy_cases, name, cls):
    cfg = GANConfig()
    cfg.data.size = (32, 32)
    cfg.generator.name, cfg.generator.ngf, cfg.generator.n_blocks, cfg.generator.num_downs = name, 4, 1, 5
    cfg.discriminator.ndf, cfg.discriminator.n_layers = 4, 1
    cfg.run.epochs, cfg.run.steps_per_epoch, cfg.sample_every = 1, 2, 0
    train = synthesis_dataset(cfg, toy_cases[:3], with_target=True, train=True)
    fit(lambda: Pix2Pix(cfg), train, None, tmp_path / "run", cfg.run, seed=0)
    g, restored = load_generator(tmp_path / "run" / "best.pt")
    assert isinstance(g, cls) and restored.generator.name == name
    ref = Pix2Pix(cfg)
    assert [p.shape for p in g.parameters()] == [p.shape for p in ref.generator.parameters()]
    (case, vol), = synthesize_cases(g, restored, toy_cases[3:4], seed=1)
    assert vol.array.shape == case.spatial_shape and 0 <= vol.array.min() and vol.array.max() <= 1
    again = next(synthesize_cases(g, restored, toy_cases[3:4], seed=1))[1]
    assert torch.equal(torch.from_numpy(vol.array), torch.from_numpy(again.array))  # seeded test-time noise


def test_unknown_generator_is_refused():
    from strokesynth.systems.pix2pix import GeneratorConfig

    with pytest.raises(ValueError, match="generator.name"):
        GeneratorConfig(name="vit")  # type: ignore[arg-type]
