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


def test_pix2pix_weight_average_is_kept_saved_resumed_and_synthesizes(tmp_path, toy_cases):
    from strokesynth.engine.checkpoint import load_system
    from strokesynth.errors import ConfigError

    with pytest.raises(ConfigError, match="ema_decay"):
        GANConfig(ema_decay=-0.1)
    cfg = GANConfig(ema_decay=0.5)
    cfg.data.size = (32, 32)
    cfg.generator.ngf, cfg.generator.n_blocks = 4, 1
    cfg.discriminator.ndf, cfg.discriminator.n_layers = 4, 1
    cfg.run.epochs, cfg.run.steps_per_epoch, cfg.sample_every = 2, 3, 0
    train = synthesis_dataset(cfg, toy_cases[:3], with_target=True, train=True)
    result = fit(lambda: Pix2Pix(cfg), train, None, tmp_path / "run", cfg.run, seed=0)
    system = result["system"]
    assert set(system.optimizers) == {"generator", "discriminator"}
    assert system.generator_steps == 6 and system.synthesis_generator is system.generator_ema
    # after 6 steps at decay min(0.5, (1+k)/(10+k)) the average differs from the last weights
    assert not all(torch.equal(a, b) for a, b in zip(system.generator_ema.parameters(),
                                                      system.generator.parameters(), strict=True))
    back = load_system(tmp_path / "run" / "best.pt")
    for a, b in zip(back.generator_ema.parameters(), system.generator_ema.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    g, restored = load_generator(tmp_path / "run" / "best.pt")
    assert g is not None and restored.ema_decay == 0.5
    for a, b in zip(g.parameters(), system.generator_ema.parameters(), strict=True):
        torch.testing.assert_close(a, b)  # synthesis from a checkpoint uses the average
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ck["extra"]["generator_steps"] == 6
    # a resumed run continues the average and the step count where the killed one stopped
    cfg.run.epochs = 3
    resumed = fit(lambda: Pix2Pix(cfg), train, None, tmp_path / "run", cfg.run, seed=0)["system"]
    straight = fit(lambda: Pix2Pix(cfg), train, None, tmp_path / "straight", cfg.run, seed=0)["system"]
    assert resumed.generator_steps == straight.generator_steps == 9
    for a, b in zip(resumed.generator_ema.parameters(), straight.generator_ema.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def _one_step(cfg: GANConfig, batch: dict) -> tuple[dict, list[torch.Tensor]]:
    from strokesynth.engine.system import Runtime

    torch.manual_seed(0)
    system = Pix2Pix(cfg)
    out = system.train_step(batch, Runtime(system))
    return out, [p.detach().clone() for p in system.generator.parameters()]


def test_lesion_weight_multiplies_the_l1_term_on_lesion_pixels_only():
    from strokesynth.errors import ConfigError

    with pytest.raises(ConfigError, match="lesion_weight"):
        GANConfig(lesion_weight=0.5)
    cfg = GANConfig()
    cfg.generator.ngf, cfg.generator.n_blocks = 4, 1
    cfg.discriminator.ndf, cfg.discriminator.n_layers = 4, 1
    g = torch.Generator().manual_seed(1)
    image = torch.rand(2, len(cfg.data.modalities) + 1, 32, 32, generator=g)
    empty = {"image": image, "label": torch.zeros(2, 1, 32, 32, dtype=torch.long)}
    full = {"image": image, "label": torch.ones(2, 1, 32, 32, dtype=torch.long)}
    half = {"image": image, "label": (torch.arange(32) < 16).long().expand(2, 1, 32, 32)}
    plain, plain_w = _one_step(cfg, half)
    cfg.lesion_weight = 4.0
    no_lesion, no_lesion_w = _one_step(cfg, empty)
    assert no_lesion["loss_g_l1"] == pytest.approx(plain["loss_g_l1"], rel=1e-6)
    for a, b in zip(no_lesion_w, plain_w, strict=True):  # without a lesion pixel it is plain pix2pix
        torch.testing.assert_close(a, b)
    all_lesion, _ = _one_step(cfg, full)
    assert all_lesion["loss_g_l1"] == pytest.approx(4.0 * plain["loss_g_l1"], rel=1e-5)
    weighted, weighted_w = _one_step(cfg, half)
    # half the columns weighted 4: the L1 lies strictly between plain and 4x plain, and the update differs
    assert plain["loss_g_l1"] < weighted["loss_g_l1"] < 4.0 * plain["loss_g_l1"]
    assert not all(torch.equal(a, b) for a, b in zip(weighted_w, plain_w, strict=True))
