"""The 3D WGAN-GP lesion-mask generator of Platscher et al. as a system: ``lesion_wgan``.

Trained on the stroke cohort's lesion masks (cases with at least 20 lesion voxels) on the data's
grid, in {-1, 1}. Every training step updates the critic with the Wasserstein loss plus λ x the
gradient penalty (Gulrajani et al., λ = 10); every ``n_critic``-th step also updates the generator
(``-critic(G(z))``). Adam 1e-4, betas (0, 0.9) as WGAN-GP. No choice is made on data: the last
epoch is kept. :meth:`LesionWGAN.sample` draws binary masks (output > 0, i.e. 0.5 in [0, 1] units).

With ``ema_decay`` > 0 (an addition to the paper, off in its config) the system also keeps an
exponential moving average of the generator's weights (network ``generator_ema``,
:mod:`strokesynth.engine.averaging`), updated after every generator step, and samples from it.
A GAN's last iterate circles around the equilibrium: on the tiny phantom the raw generator's
volume distribution swung between epochs from indistinguishable from the training masks to KS
p < 0.001, while the average held still (docs/labelmap.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from strokesynth.engine.averaging import averaged_copy, check_decay, update_average
from strokesynth.engine.config import OptimConfig, RunConfig, make_optimizer
from strokesynth.engine.system import SYSTEMS, Runtime, System
from strokesynth.errors import ConfigError
from strokesynth.losses.adversarial import discriminator_loss, generator_loss, gradient_penalty
from strokesynth.nets.blocks import init_weights
from strokesynth.nets.registry import NETWORKS


def _optim() -> OptimConfig:
    return OptimConfig(name="adam", lr=1e-4, betas=(0.0, 0.9))


def _run() -> RunConfig:
    return RunConfig(epochs=500, batch_size=8, selection="last")


@dataclass
class LesionGANConfig:
    """The lesion GAN.

    Attributes:
        shape: the data grid (X, Y, Z), powers of two (set from the data when empty).
        latent: length of z (128).
        generator_channels: widths of the dense 4x4x4 map and the upsampling blocks.
        generator_norm: ``instance`` (the paper), ``batch`` or ``none`` in the generator's blocks.
        critic_channels: widths of the critic's strided convs.
        n_critic: critic steps per generator step (5).
        lambda_gp: gradient-penalty weight (10).
        min_voxels: a training mask needs at least this many lesion voxels (20).
        minibatch_std: the critic sees the batch's feature spread (against mode collapse; an
            addition to the paper, off in the paper config).
        flip: train on every mask and its left-right mirror (twice the shapes; a stroke occurs
            on either side); an addition to the paper, off in the paper config.
        instance_noise: standard deviation of Gaussian noise added to every critic input, real
            and generated (Sønderby et al.'s instance noise: binary real masks and soft tanh
            outputs then overlap, so the critic cannot win on the values alone); 0 in the paper.
        ema_decay: decay of the moving average of the generator's weights that :meth:`sample`
            draws from (0: off, the paper; 0.99 averages over about the last 100 generator
            steps). The first steps use ``min(ema_decay, (1 + k) / (10 + k))`` after ``k``
            generator steps, so the average does not hold on to the initial weights.
        optim: Adam 1e-4, betas (0, 0.9) for both networks.
        run: epochs, batch size, seed...; the last epoch is kept.
    """

    name: str = "lesion_wgan"
    shape: list[int] = field(default_factory=list)
    latent: int = 128
    generator_channels: list[int] = field(default_factory=lambda: [128, 64, 32, 16, 8])
    generator_norm: str = "instance"
    critic_channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    n_critic: int = 5
    lambda_gp: float = 10.0
    min_voxels: int = 20
    minibatch_std: bool = False
    flip: bool = False
    instance_noise: float = 0.0
    ema_decay: float = 0.0
    optim: OptimConfig = field(default_factory=_optim)
    run: RunConfig = field(default_factory=_run)

    def __post_init__(self) -> None:
        if self.n_critic < 1:
            raise ConfigError("n_critic", f"must be at least 1, got {self.n_critic}")
        if self.shape and len(self.shape) != 3:
            raise ConfigError("shape", f"a 3D grid (X, Y, Z), got {self.shape}")
        check_decay(self.ema_decay)


@SYSTEMS.register("lesion_wgan")
class LesionWGAN(System[LesionGANConfig]):
    """WGAN-GP on 3D masks (module docstring): networks ``generator`` and ``critic`` (and
    ``generator_ema``, not trained by an optimiser, with ``ema_decay`` > 0)."""

    config_class = LesionGANConfig
    monitor = None

    def __init__(self, cfg: LesionGANConfig) -> None:
        super().__init__()
        if not cfg.shape:
            raise ConfigError("shape", "the lesion GAN's grid is not set")
        self.config = cfg
        shape = tuple(int(s) for s in cfg.shape)
        self.generator = init_weights(NETWORKS.build("lesion_generator", cfg, shape)).reset_output()
        self.critic = init_weights(NETWORKS.build("lesion_critic", cfg, shape))
        self.networks = {"generator": self.generator, "critic": self.critic}
        self.optimizers = {k: make_optimizer(cfg.optim, n.parameters()) for k, n in self.networks.items()}
        self.optim_configs = {k: cfg.optim for k in self.networks}
        self.generator_ema: nn.Module | None = None
        if cfg.ema_decay > 0:
            self.generator_ema = averaged_copy(self.generator)
            self.networks["generator_ema"] = self.generator_ema
        self.steps = 0

    def example_inputs(self, name: str, net: torch.nn.Module) -> tuple[torch.Tensor, ...] | None:
        """The generators take a batch of latents ``(2, latent)``; the critic a 3D mask batch."""
        if name.startswith("generator"):
            return (torch.randn(2, net.latent, generator=torch.Generator().manual_seed(0)),)
        return super().example_inputs(name, net)

    def train_step(self, batch: dict[str, Any], rt: Runtime) -> dict[str, float]:
        real = batch["mask"].to(rt.device)
        z = torch.randn(real.shape[0], self.config.latent, device=rt.device)
        critic, gen = rt.net("critic"), rt.net("generator")
        sigma = self.config.instance_noise

        def noisy(x: torch.Tensor) -> torch.Tensor:
            return x + sigma * torch.randn_like(x) if sigma > 0 else x

        rt.requires_grad("critic", True)
        with rt.autocast():
            fake = gen(z).float()
            real_in, fake_in = noisy(real), noisy(fake.detach())
            wd = discriminator_loss(critic(real_in).float(), critic(fake_in).float(), "wgan")
        gp = gradient_penalty(critic, real_in, fake_in)
        rt.step(wd + self.config.lambda_gp * gp, "critic")
        out = {"critic_wasserstein": float(-wd.detach()), "gradient_penalty": float(gp.detach())}
        self.steps += 1
        if self.steps % self.config.n_critic == 0:
            rt.requires_grad("critic", False)
            with rt.autocast():
                loss_g = generator_loss(critic(noisy(gen(z))).float(), "wgan")
            rt.step(loss_g, "generator")
            out["loss_g"] = float(loss_g.detach())
            self._update_ema()
        return out

    def _update_ema(self) -> None:
        if self.generator_ema is not None:
            update_average(self.generator_ema, self.generator, self.config.ema_decay,
                           self.steps // self.config.n_critic - 1)

    def extra_state(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.steps = int(state.get("steps", 0))

    @torch.no_grad()
    def sample(self, n: int, *, seed: int, device: str = "cpu") -> torch.Tensor:
        """``n`` binary masks ``(n, X, Y, Z)`` from the seeded latent stream ``seed`` (drawn by the
        averaged generator when ``ema_decay`` > 0)."""
        g = torch.Generator().manual_seed(int(seed))
        net = self.generator_ema if self.generator_ema is not None else self.generator
        return net.to(device).sample(n, generator=g, device=device)
