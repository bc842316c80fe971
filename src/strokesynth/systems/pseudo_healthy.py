"""Pseudo-healthy synthesis by pathology factorisation (Xia, Chartsias & Tsaftaris) and its baselines.

Three systems on the same data (:mod:`strokesynth.data.pathology_slices`) and networks
(:mod:`strokesynth.nets.factorisation`), least-squares GAN losses throughout:

``ph_factorisation`` - G (pathological -> pseudo-healthy), S (segmentor), R (pseudo-healthy +
mask -> pathological), critics D_x (images) and D_m (masks, unpaired mode only). One step::

    cycle P-H:  h = G(x_p);  m = S(x_p);  x_p' = R(h, m)
    cycle H-H:  p = R(x_h, 0);  m_h' = S(p);  x_h' = G(p)
    L_CC  = |x_p' - x_p|_1 + |x_h' - x_h|_1 + |m_h' - 0|_1        (MAE, not Dice, on the empty mask)
    L_GAN1 = LSGAN of D_x: real healthy slices vs G's h (cycle P-H) and R's p (cycle H-H)

The paper's L_GAN1 does not say which image of the H-H cycle D_x judges. Read here as the
authors' public implementation does: R's output p = R(x_h, 0), which has an empty mask and so
must itself look healthy; the adversarial term then trains R as well as G (judging x_h' = G(p)
instead would train G twice and leave R's healthy output unconstrained).
    paired:   L_Seg  = Dice(S(x_p), m_p)        loss = 10 L_CC + 1 L_GAN1 + 10 L_Seg
    unpaired: L_GAN2 = LSGAN of D_m: masks of other subjects vs S(x_p)
                                                loss = 10 L_CC + 2 L_GAN1 + 10 L_GAN2

``ph_cgan`` - the conditional GAN baseline: G alone, with the adversarial loss of D_x only.

``ph_cyclegan`` - the CycleGAN baseline between the pathological and healthy domains: G_ph,
G_hp (the same generator architecture), critics D_h and D_p, cycle L1 (x10) and pix2pix's
image pool of 50; no identity loss.

``ph_segmentor`` - f_pre (and nothing else): S's architecture trained with Dice + BCE on the
training slices; it measures how healthy the pseudo-healthy images look.

Every system answers :meth:`pseudo_healthy` (``(B, 1, S, S)`` in [0, 1]); the factorisation
also :meth:`pathology` (S's mask) and both it and the CycleGAN :meth:`reconstruction`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from strokesynth.config import bounded
from strokesynth.data.pathology_slices import SliceConfig
from strokesynth.engine.config import OptimConfig, RunConfig, make_optimizer
from strokesynth.engine.gan_steps import ImagePool
from strokesynth.engine.system import SYSTEMS, Runtime, System
from strokesynth.errors import ConfigError
from strokesynth.losses.adversarial import discriminator_loss, generator_loss
from strokesynth.nets.blocks import init_weights
from strokesynth.nets.factorisation import FactorGenerator, PatchCritic, ResidualUNet

METHODS = ("factorisation", "cgan", "cyclegan")


def _optim() -> OptimConfig:
    return OptimConfig(name="adam", lr=2e-4, betas=(0.5, 0.999))


def _run() -> RunConfig:
    return RunConfig(epochs=100, batch_size=4, selection="last", folds=3)


@dataclass
class PseudoHealthyConfig:
    """One pseudo-healthy model.

    Attributes:
        method: ``factorisation`` (the proposed model), ``cgan`` or ``cyclegan`` (baselines).
        mode: ``paired`` (S trained with the masks, L_Seg) or ``unpaired`` (masks of other
            subjects through D_m, L_GAN2); only for ``factorisation``.
        data: contrast and slice preparation (the model records its pixel size and contrast).
        ngf, n_blocks: the generators' first width and residual blocks (32, 6).
        segmentor_channels: S's features per level (32-64-128-256-512).
        critic_channels: the critics' stride-2 convs (32-128-256-512).
        lambda_cc, lambda_gan, lambda_mask: weights of L_CC, L_GAN1 and L_Seg / L_GAN2 (paper:
            10, 1, 10 paired; 10, 2, 10 unpaired).
        lambda_cycle, pool_size: CycleGAN's cycle weight and image pool.
        optim: Adam 2e-4 (0.5, 0.999) for the generators' and the critics' optimisers.
        run: epochs, batch size, seed...; the last epoch is kept (nothing is chosen on data).
    """

    name: str = "pseudo_healthy"
    method: Literal["factorisation", "cgan", "cyclegan"] = "factorisation"
    mode: Literal["paired", "unpaired"] = "paired"
    data: SliceConfig = field(default_factory=SliceConfig)
    ngf: int = 32
    n_blocks: int = 6
    segmentor_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])
    critic_channels: list[int] = field(default_factory=lambda: [32, 128, 256, 512])
    lambda_cc: float = 10.0
    lambda_gan: float = 1.0
    lambda_mask: float = 10.0
    lambda_cycle: float = 10.0
    pool_size: int = 50
    optim: OptimConfig = field(default_factory=_optim)
    run: RunConfig = field(default_factory=_run)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError("method", f"choose from {', '.join(METHODS)}, not {self.method!r}")
        if self.mode not in ("paired", "unpaired"):
            raise ConfigError("mode", f"choose paired or unpaired, not {self.mode!r}")
        factor = 2 ** (len(self.segmentor_channels) - 1)
        if self.data.size % factor:
            raise ConfigError("data.size", f"{self.data.size} px is not divisible by {factor} "
                                           f"(the segmentor's {len(self.segmentor_channels)} levels)")


@dataclass
class SegmentorConfig:
    """f_pre: S's architecture trained alone (Dice + BCE) on the training slices."""

    name: str = "ph_segmentor"
    data: SliceConfig = field(default_factory=SliceConfig)
    channels: list[int] = bounded(factory=lambda: [32, 64, 128, 256, 512], lo=1, hi=16384, min_len=1)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adam", lr=1e-3))
    run: RunConfig = field(default_factory=lambda: RunConfig(epochs=50, batch_size=8, selection="last", folds=3,
                                                             lesion_fraction=0.5))


def soft_dice_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """``1 - (2 sum(p t) + eps) / (sum p + sum t + eps)`` over the whole batch ``(B, 1, H, W)``."""
    inter = (prob * target).sum()
    return 1.0 - (2 * inter + eps) / (prob.sum() + target.sum() + eps)


def _lsgan_d(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * discriminator_loss(critic(real).float(), critic(fake.detach()).float(), "lsgan")


def _lsgan_g(critic: torch.nn.Module, fake: torch.Tensor) -> torch.Tensor:
    return generator_loss(critic(fake).float(), "lsgan")


class _PseudoHealthySystem(System[PseudoHealthyConfig]):
    """What the three pseudo-healthy systems share: config, optimisers, inference."""

    config_class = PseudoHealthyConfig
    monitor = None

    def _optimisers(self, generators: list[str], critics: list[str]) -> None:
        cfg = self.config
        gen = [p for n in generators for p in self.networks[n].parameters()]
        crit = [p for n in critics for p in self.networks[n].parameters()]
        self.optimizers = {"generators": make_optimizer(cfg.optim, gen), "critics": make_optimizer(cfg.optim, crit)}
        self.optim_configs = {"generators": cfg.optim, "critics": cfg.optim}

    def _critics(self, names: list[str], flag: bool, rt: Runtime) -> None:
        for n in names:
            rt.requires_grad(n, flag)

    @torch.no_grad()
    def pseudo_healthy(self, x: torch.Tensor) -> torch.Tensor:
        """Pseudo-healthy images of ``x`` ``(B, 1, S, S)`` in [0, 1] (same shape and units)."""
        raise NotImplementedError

    @torch.no_grad()
    def pathology(self, x: torch.Tensor) -> torch.Tensor | None:
        """The model's own pathology mask of ``x`` (probability, ``(B, 1, S, S)``), if it has one."""
        return None

    @torch.no_grad()
    def reconstruction(self, x: torch.Tensor) -> torch.Tensor | None:
        """``x`` rebuilt from its pseudo-healthy image (and mask), if the model has a way back."""
        return None

    def eval_mode(self) -> _PseudoHealthySystem:
        for n in self.networks.values():
            n.eval()
        return self


@SYSTEMS.register("ph_factorisation")
class PathologyFactorisation(_PseudoHealthySystem):
    """The proposed model (see the module docstring): networks G, R, S, D_x (and D_m unpaired)."""


    def __init__(self, cfg: PseudoHealthyConfig) -> None:
        super().__init__()
        self.config = cfg
        self.unpaired = cfg.mode == "unpaired"
        self.networks = {"G": init_weights(FactorGenerator(1, cfg.ngf, cfg.n_blocks)),
                         "R": init_weights(FactorGenerator(2, cfg.ngf, cfg.n_blocks)),
                         "S": ResidualUNet(1, cfg.segmentor_channels),
                         "D_x": init_weights(PatchCritic(1, cfg.critic_channels))}
        if self.unpaired:
            self.networks["D_m"] = init_weights(PatchCritic(1, cfg.critic_channels))
        self.critic_names = ["D_x", "D_m"] if self.unpaired else ["D_x"]
        self._optimisers(["G", "R", "S"], self.critic_names)

    def train_step(self, batch: dict[str, Any], rt: Runtime) -> dict[str, float]:
        cfg = self.config
        xp, mp, xh, mo = (batch[k].to(rt.device) for k in ("x_p", "m_p", "x_h", "m_o"))
        G, R, S, Dx = rt.net("G"), rt.net("R"), rt.net("S"), rt.net("D_x")
        with rt.autocast():
            h = G(xp)
            m = S(xp)
            rec_p = R(torch.cat([h, m], 1))
            p = R(torch.cat([xh, torch.zeros_like(xh)], 1))
            m_h = S(p)
            rec_h = G(p)
        # critics: real healthy slices vs G's pseudo-healthy h and R's healthy-mask output p; real masks vs S's
        self._critics(self.critic_names, True, rt)
        with rt.autocast():
            loss_d = _lsgan_d(Dx, xh.repeat(2, 1, 1, 1), torch.cat([h, p]))
            if self.unpaired:
                loss_d = loss_d + _lsgan_d(rt.net("D_m"), mo, m)
        rt.step(loss_d, "critics")
        self._critics(self.critic_names, False, rt)
        with rt.autocast():
            cc = F.l1_loss(rec_p.float(), xp) + F.l1_loss(rec_h.float(), xh) + m_h.float().abs().mean()
            gan = _lsgan_g(Dx, torch.cat([h, p]))
            third = _lsgan_g(rt.net("D_m"), m) if self.unpaired else soft_dice_loss(m.float(), mp)
        rt.step(cfg.lambda_cc * cc + cfg.lambda_gan * gan + cfg.lambda_mask * third, "generators")
        return {"loss_d": float(loss_d.detach()), "l_cc": float(cc.detach()), "l_gan1": float(gan.detach()),
                ("l_gan2" if self.unpaired else "l_seg"): float(third.detach())}

    @torch.no_grad()
    def pseudo_healthy(self, x: torch.Tensor) -> torch.Tensor:
        return self.networks["G"](x).float()

    @torch.no_grad()
    def pathology(self, x: torch.Tensor) -> torch.Tensor:
        return self.networks["S"](x).float()

    @torch.no_grad()
    def reconstruction(self, x: torch.Tensor) -> torch.Tensor:
        return self.networks["R"](torch.cat([self.networks["G"](x), self.networks["S"](x)], 1)).float()


@SYSTEMS.register("ph_cgan")
class PseudoHealthyCGAN(_PseudoHealthySystem):
    """Baseline: G with the adversarial loss of D_x alone (real healthy vs G(x_p))."""


    def __init__(self, cfg: PseudoHealthyConfig) -> None:
        super().__init__()
        self.config = cfg
        self.networks = {"G": init_weights(FactorGenerator(1, cfg.ngf, cfg.n_blocks)),
                         "D_x": init_weights(PatchCritic(1, cfg.critic_channels))}
        self._optimisers(["G"], ["D_x"])

    def train_step(self, batch: dict[str, Any], rt: Runtime) -> dict[str, float]:
        xp, xh = batch["x_p"].to(rt.device), batch["x_h"].to(rt.device)
        with rt.autocast():
            h = rt.net("G")(xp)
        rt.requires_grad("D_x", True)
        with rt.autocast():
            loss_d = _lsgan_d(rt.net("D_x"), xh, h)
        rt.step(loss_d, "critics")
        rt.requires_grad("D_x", False)
        with rt.autocast():
            loss_g = _lsgan_g(rt.net("D_x"), h)
        rt.step(loss_g, "generators")
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())}

    @torch.no_grad()
    def pseudo_healthy(self, x: torch.Tensor) -> torch.Tensor:
        return self.networks["G"](x).float()


@SYSTEMS.register("ph_cyclegan")
class PseudoHealthyCycleGAN(_PseudoHealthySystem):
    """Baseline: CycleGAN between pathological (P) and healthy (H) slices: G_ph, G_hp, D_h, D_p."""


    def __init__(self, cfg: PseudoHealthyConfig) -> None:
        super().__init__()
        self.config = cfg
        self.networks = {"G_ph": init_weights(FactorGenerator(1, cfg.ngf, cfg.n_blocks)),
                         "G_hp": init_weights(FactorGenerator(1, cfg.ngf, cfg.n_blocks)),
                         "D_h": init_weights(PatchCritic(1, cfg.critic_channels)),
                         "D_p": init_weights(PatchCritic(1, cfg.critic_channels))}
        self._optimisers(["G_ph", "G_hp"], ["D_h", "D_p"])
        self.pools = {"h": ImagePool(cfg.pool_size), "p": ImagePool(cfg.pool_size)}

    def train_step(self, batch: dict[str, Any], rt: Runtime) -> dict[str, float]:
        xp, xh = batch["x_p"].to(rt.device), batch["x_h"].to(rt.device)
        with rt.autocast():
            fake_h = rt.net("G_ph")(xp)
            rec_p = rt.net("G_hp")(fake_h)
            fake_p = rt.net("G_hp")(xh)
            rec_h = rt.net("G_ph")(fake_p)
        self._critics(["D_h", "D_p"], False, rt)
        with rt.autocast():
            adv = _lsgan_g(rt.net("D_h"), fake_h) + _lsgan_g(rt.net("D_p"), fake_p)
            cyc = F.l1_loss(rec_p.float(), xp) + F.l1_loss(rec_h.float(), xh)
        rt.step(adv + self.config.lambda_cycle * cyc, "generators")
        self._critics(["D_h", "D_p"], True, rt)
        with rt.autocast():
            loss_d = (_lsgan_d(rt.net("D_h"), xh, self.pools["h"].query(fake_h))
                      + _lsgan_d(rt.net("D_p"), xp, self.pools["p"].query(fake_p)))
        rt.step(loss_d, "critics")
        return {"loss_d": float(loss_d.detach()), "loss_g_gan": float(adv.detach()), "l_cycle": float(cyc.detach())}

    def extra_state(self) -> dict[str, Any]:
        return {k: [t.cpu() for t in p.images] for k, p in self.pools.items()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for k, images in state.items():
            if k in self.pools:
                self.pools[k].images = [t.to(next(self.networks["G_ph"].parameters()).device) for t in images]

    @torch.no_grad()
    def pseudo_healthy(self, x: torch.Tensor) -> torch.Tensor:
        return self.networks["G_ph"](x).float()

    @torch.no_grad()
    def reconstruction(self, x: torch.Tensor) -> torch.Tensor:
        return self.networks["G_hp"](self.networks["G_ph"](x)).float()


@SYSTEMS.register("ph_segmentor")
class SliceSegmentor(System[SegmentorConfig]):
    """f_pre: S's architecture, Dice + BCE, on every training slice (lesion-aware batches)."""

    config_class = SegmentorConfig
    monitor = None

    def __init__(self, cfg: SegmentorConfig) -> None:
        super().__init__()
        self.config = cfg
        self.networks = {"S": ResidualUNet(1, cfg.channels)}
        self.optimizers = {"S": make_optimizer(cfg.optim, self.networks["S"].parameters())}
        self.optim_configs = {"S": cfg.optim}

    def train_step(self, batch: dict[str, Any], rt: Runtime) -> dict[str, float]:
        x, y = batch["image"].to(rt.device), batch["label"].to(rt.device)
        with rt.autocast():
            p = rt.net("S")(x).float()
        loss = soft_dice_loss(p, y) + F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), y)
        rt.step(loss, "S")
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """Lesion probability ``(B, 1, S, S)`` of images ``x``."""
        return self.networks["S"](x).float()


SYSTEM_OF_METHOD = {"factorisation": PathologyFactorisation, "cgan": PseudoHealthyCGAN,
                    "cyclegan": PseudoHealthyCycleGAN}


def build_pseudo_healthy(cfg: PseudoHealthyConfig) -> _PseudoHealthySystem:
    """The system of ``cfg.method``."""
    return SYSTEM_OF_METHOD[cfg.method](cfg)


@torch.no_grad()
def batched(fn, images: np.ndarray, *, device: str = "cpu", batch: int = 16) -> np.ndarray:
    """Apply ``fn`` (a tensor ``(B, 1, S, S)`` -> tensor function) to ``(N, 1, S, S)`` arrays in batches."""
    out = []
    for i in range(0, len(images), batch):
        out.append(fn(torch.from_numpy(np.ascontiguousarray(images[i:i + batch])).to(device)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros_like(images)
