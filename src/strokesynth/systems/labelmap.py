"""Label map -> DWI translation (Platscher, Zopes & Federau): Pix2Pix, SPADE and CycleGAN as systems.

All three learn axial slices, one-hot anatomical label map (lesion as the last class) -> DWI in
[-1, 1], on the same data and schedule, so they differ in architecture only:

``lm_pix2pix`` - U-Net generator (instance norm) and a conditional PatchGAN scaled to 128 px
(C32-C64-C128, then stride-1 layers) on ``concat(label map, image)``; pix2pix's step: D on real
and generated pairs (halved), then G with the adversarial loss plus ``lambda_l1`` x L1 (10 and 100
are the paper's two configs).

``lm_spade`` - the SPADE generator (latent 128 -> dense 4x4x128 -> residual SPADE blocks
128-64-32-16-8 with nearest upsampling -> 3x3 conv, tanh) with the same conditional PatchGAN and
the same step and losses as Pix2Pix (Park et al.'s hinge, feature-matching and VGG losses are not
used, so that only the generator differs).

``lm_cyclegan`` - two ResNet generators (label map -> DWI, DWI -> label map in signed one-hot
units), two unconditional PatchGANs, least-squares adversarial losses, cycle L1 (``lambda_cycle``,
10) both ways and pix2pix's image pool (50). The pairs are broken inside each batch (images are
rolled by one sample), so it learns from unpaired data as CycleGAN is meant to; there is no
identity loss, which cannot apply to a label map -> image mapping (the paper's remark).

No choice is made on data: every model keeps its last epoch; ``validate`` logs the L1 and the
lesion-to-parenchyma intensity ratio of generated and real validation slices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from strokesynth.data.label_maps import LabelTable, load_label_table, one_hot
from strokesynth.data.mr_volumes import TranslationSlices
from strokesynth.engine.config import OptimConfig, RunConfig, make_optimizer
from strokesynth.engine.gan_steps import ImagePool, conditional_gan_step
from strokesynth.engine.system import SYSTEMS, Runtime, System, autocast
from strokesynth.errors import ConfigError
from strokesynth.losses.adversarial import GAN_MODES, Adversarial
from strokesynth.metrics import lesion_contrast
from strokesynth.nets.blocks import init_weights
from strokesynth.nets.registry import NETWORKS
from strokesynth.systems.pix2pix import GeneratorConfig

MODELS = ("pix2pix", "spade", "cyclegan")


def _optim() -> OptimConfig:
    return OptimConfig(name="adam", lr=2e-4, betas=(0.5, 0.999))


def _run() -> RunConfig:
    return RunConfig(epochs=100, batch_size=8, selection="last")


@dataclass
class TranslationConfig:
    """One label map -> DWI translation model.

    Attributes:
        model: ``pix2pix``, ``spade`` or ``cyclegan``.
        table: the label table (shipped name or YAML) whose classes are the one-hot channels.
        size: slice size (px); 128 in the paper.
        ngf, num_downs, norm, dropout: Pix2Pix's U-Net generator (64, 7 = log2(128), instance, 0.5).
        spade_channels, latent, spade_hidden: SPADE's block widths (128-64-32-16-8: 4 * 2**5 = 128 px),
            latent length (128) and SPADE-layer hidden width (64).
        cycle_ngf, n_blocks: CycleGAN's ResNet generators (64, 9).
        ndf, n_layers: the PatchGANs (32, 2: C32-C64-C128 then stride-1 layers).
        gan_loss: Pix2Pix's and SPADE's adversarial loss (``vanilla``); CycleGAN uses ``lsgan``.
        lambda_l1: L1 weight (Pix2Pix and SPADE; 100, or 10 in the paper's other config).
        lambda_cycle, pool_size: CycleGAN's cycle weight (10) and image pool (50).
        optim: Adam 2e-4 (0.5, 0.999) for every network.
        run: 100 epochs of batch 8 in the paper; the last epoch is kept.
    """

    name: str = "labelmap_translation"
    model: Literal["pix2pix", "spade", "cyclegan"] = "pix2pix"
    table: str = "phantom"
    size: int = 128
    ngf: int = 64
    num_downs: int = 7
    norm: Literal["instance", "batch", "none"] = "instance"
    dropout: float = 0.5
    spade_channels: list[int] = field(default_factory=lambda: [128, 64, 32, 16, 8])
    latent: int = 128
    spade_hidden: int = 64
    cycle_ngf: int = 64
    n_blocks: int = 9
    ndf: int = 32
    n_layers: int = 2
    gan_loss: Literal["vanilla", "lsgan", "hinge", "wgan"] = "vanilla"
    lambda_l1: float = 100.0
    lambda_cycle: float = 10.0
    pool_size: int = 50
    optim: OptimConfig = field(default_factory=_optim)
    run: RunConfig = field(default_factory=_run)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError("model", f"choose from {', '.join(MODELS)}, not {self.model!r}")
        if self.gan_loss not in GAN_MODES:
            raise ConfigError("gan_loss", f"choose from {', '.join(GAN_MODES)}")
        if self.model == "pix2pix" and self.size % 2 ** self.num_downs:
            raise ConfigError("size", f"{self.size} px is not divisible by 2**num_downs = {2 ** self.num_downs}")
        if self.model == "spade" and self.size != 4 * 2 ** len(self.spade_channels):
            raise ConfigError("spade_channels", f"{len(self.spade_channels)} SPADE blocks make "
                                                f"{4 * 2 ** len(self.spade_channels)} px images, not {self.size}")
        if self.model == "cyclegan" and self.size % 4:
            raise ConfigError("size", f"CycleGAN's ResNet generators need a multiple of 4 px, not {self.size}")

    def label_table(self) -> LabelTable:
        return load_label_table(self.table)


class _Translation(System[TranslationConfig]):
    """What the three translation systems share: config, ``translate`` and validation."""

    config_class = TranslationConfig
    monitor = None

    def __init__(self, cfg: TranslationConfig) -> None:
        super().__init__()
        self.config = cfg
        self.n_classes = cfg.label_table().n_classes

    def _adam(self, groups: dict[str, list[str]]) -> None:
        cfg = self.config
        self.optimizers = {k: make_optimizer(cfg.optim, [p for n in names for p in self.networks[n].parameters()])
                           for k, names in groups.items()}
        self.optim_configs = {k: cfg.optim for k in groups}

    def generator(self) -> torch.nn.Module:
        return self.networks["generator"]

    @torch.no_grad()
    def translate(self, labels: torch.Tensor) -> torch.Tensor:
        """One-hot label maps ``(B, C, S, S)`` -> DWI ``(B, 1, S, S)`` in [-1, 1]."""
        g = self.generator().eval()
        return g(labels * 2 - 1).float().clamp(-1, 1)

    def validate(self, dataset: TranslationSlices, rt: Runtime) -> dict[str, float]:
        l1, gen, real = [], [], []
        table = self.config.label_table()
        for v in dataset.volumes:
            fake = translate_volume(self, v.classes, self.n_classes, device=rt.device, amp=rt.amp)
            brain = v.brain
            l1.append(float(np.abs(fake - v.image)[brain].mean()))  # type: ignore[index]
            if v.lesion.any():
                par = parenchyma_mask(v.classes, table) | v.lesion
                gen.append(lesion_contrast((fake + 1) / 2, v.lesion, par))
                real.append(lesion_contrast((v.image + 1) / 2, v.lesion, par))  # type: ignore[operator]
        nan = float("nan")
        return {"val_l1": float(np.mean(l1)) / 2 if l1 else nan,
                "val_lesion_ratio_generated": float(np.nanmean(gen)) if gen else nan,
                "val_lesion_ratio_real": float(np.nanmean(real)) if real else nan}


def parenchyma_mask(classes: np.ndarray, table: LabelTable) -> np.ndarray:
    """Where the label map is grey/white matter or deep grey (the lesion-ratio denominator)."""
    from strokesynth.data.injection import parenchyma_classes

    return np.isin(classes, parenchyma_classes(table))


@SYSTEMS.register("lm_pix2pix")
class LabelPix2Pix(_Translation):
    """Pix2Pix label map -> DWI (module docstring): networks ``generator``, ``discriminator``."""


    def __init__(self, cfg: TranslationConfig) -> None:
        super().__init__(cfg)
        self.networks = {"generator": init_weights(self._build_generator()),
                         "discriminator": init_weights(NETWORKS.build("patchgan", cfg, self.n_classes + 1))}
        self._adam({"generator": ["generator"], "discriminator": ["discriminator"]})
        self.adversarial = Adversarial(cfg.gan_loss)

    def _build_generator(self) -> torch.nn.Module:
        return NETWORKS.build("unet_generator", self.config, self.n_classes)

    def train_step(self, batch: dict[str, Any], rt: Runtime) -> dict[str, float]:
        loss_d, adv, l1 = conditional_gan_step(batch["label"].to(rt.device) * 2 - 1, batch["image"].to(rt.device), rt,
                                               self.adversarial, self.config.lambda_l1)
        return {"loss_d": loss_d, "loss_g_gan": adv, "loss_g_l1": l1}


@SYSTEMS.register("lm_spade")
class LabelSPADE(LabelPix2Pix):
    """SPADE label map -> DWI (module docstring): the Pix2Pix step with the SPADE generator."""

    def _build_generator(self) -> torch.nn.Module:
        return NETWORKS.build("spade_generator", self.config, self.n_classes)

    def example_inputs(self, name: str, net: torch.nn.Module) -> tuple[torch.Tensor, ...] | None:
        """The SPADE generator takes a one-hot label map ``(2, classes, S, S)`` and a latent ``(2, latent)``."""
        if name != "generator":
            return super().example_inputs(name, net)
        g = torch.Generator().manual_seed(0)
        labels = torch.randint(0, net.label_channels, (2, net.size, net.size), generator=g)
        seg = torch.nn.functional.one_hot(labels, net.label_channels).permute(0, 3, 1, 2).float()
        return seg, torch.randn(2, net.latent, generator=g)


@SYSTEMS.register("lm_cyclegan")
class LabelCycleGAN(_Translation):
    """CycleGAN label map <-> DWI (module docstring): ``generator`` (map -> DWI), ``generator_back``
    (DWI -> map), ``critic_image``, ``critic_label``."""


    def __init__(self, cfg: TranslationConfig) -> None:
        super().__init__(cfg)
        gen = GeneratorConfig(ngf=cfg.cycle_ngf, n_blocks=cfg.n_blocks, dropout=0.0, test_dropout=False, norm=cfg.norm)
        self.networks = {
            "generator": init_weights(NETWORKS.build("resnet_generator", gen, self.n_classes, 1)),
            "generator_back": init_weights(NETWORKS.build("resnet_generator", gen, 1, self.n_classes)),
            "critic_image": init_weights(NETWORKS.build("patchgan", cfg, 1)),
            "critic_label": init_weights(NETWORKS.build("patchgan", cfg, self.n_classes)),
        }
        self._adam({"generators": ["generator", "generator_back"], "critics": ["critic_image", "critic_label"]})
        self.pool_image, self.pool_label = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)
        self.adversarial = Adversarial("lsgan")

    def train_step(self, batch: dict[str, Any], rt: Runtime) -> dict[str, float]:
        a = batch["label"].to(rt.device) * 2 - 1
        b = batch["image"].to(rt.device).roll(1, 0)  # unpaired: another slice's image
        cfg = self.config
        for n in ("critic_image", "critic_label"):
            rt.requires_grad(n, False)
        with rt.autocast():
            fake_b = rt.net("generator")(a)
            rec_a = rt.net("generator_back")(fake_b)
            fake_a = rt.net("generator_back")(b)
            rec_b = rt.net("generator")(fake_a)
            adv = (self.adversarial.g(rt.net("critic_image")(fake_b).float())
                   + self.adversarial.g(rt.net("critic_label")(fake_a).float()))
        cycle = F.l1_loss(rec_a.float(), a) + F.l1_loss(rec_b.float(), b)
        rt.step(adv + cfg.lambda_cycle * cycle, "generators")
        for n in ("critic_image", "critic_label"):
            rt.requires_grad(n, True)
        pb, pa = self.pool_image.query(fake_b.detach().float()), self.pool_label.query(fake_a.detach().float())
        with rt.autocast():
            loss_d = 0.5 * (self.adversarial.d(rt.net("critic_image")(b).float(), rt.net("critic_image")(pb).float())
                            + self.adversarial.d(rt.net("critic_label")(a).float(), rt.net("critic_label")(pa).float()))
        rt.step(loss_d, "critics")
        return {"loss_g_gan": float(adv.detach()), "loss_cycle": float(cycle.detach()), "loss_d": float(loss_d.detach())}

    def extra_state(self) -> dict[str, Any]:
        return {"pool_image": list(self.pool_image.images), "pool_label": list(self.pool_label.images)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool_image.images = list(state.get("pool_image", []))
        self.pool_label.images = list(state.get("pool_label", []))


def build_translation(cfg: TranslationConfig) -> _Translation:
    """The system of ``cfg.model``."""
    return {"pix2pix": LabelPix2Pix, "spade": LabelSPADE, "cyclegan": LabelCycleGAN}[cfg.model](cfg)


@torch.no_grad()
def translate_volume(system: _Translation, classes: np.ndarray, n_classes: int, *, device: str = "cpu",
                     amp: str = "none", batch: int = 16) -> np.ndarray:
    """A label map ``(X, Y, Z)`` of class ids -> synthetic DWI ``(X, Y, Z)`` in [-1, 1], slice by slice
    (-1 outside the label map's non-background classes). SPADE's latent is drawn from torch's global
    generator: seed it for a reproducible volume."""
    out = np.full(classes.shape, -1.0, np.float32)
    zs = [z for z in range(classes.shape[2]) if classes[:, :, z].any()]
    for i in range(0, len(zs), batch):
        part = zs[i:i + batch]
        lab = one_hot(np.stack([classes[:, :, z] for z in part]), n_classes, dim=1).to(device)
        with autocast(device, amp):
            img = system.translate(lab).float().cpu().numpy()[:, 0]
        for j, z in enumerate(part):
            out[:, :, z] = np.where(classes[:, :, z] > 0, img[j], -1.0)
    return out

