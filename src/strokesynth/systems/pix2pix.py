"""The CT-to-MR cGAN of Rubin & Abulnaga as a system: pix2pix on CTP slices -> DWI.

One training step is pix2pix's ``optimize_parameters``: generate ``G(x)``; update D on
``concat(x, y)`` (real) and ``concat(x, G(x).detach())`` (fake), its loss halved; then update G
with the adversarial loss on ``concat(x, G(x))`` plus ``lambda_l1 * |G(x) - y|``. Inputs and
target are normalised to [0, 1] by the data layer and mapped to [-1, 1] for the networks.

The generator is the last one (no monitor): the validation scores (L1 over the brain and inside
the lesions, and the lesion contrast of the synthesis on the selection cases) are logged, not
used for any choice. With ``ema_decay`` > 0 (not in the paper) the system also keeps a moving
average of the generator's weights (network ``generator_ema``,
:mod:`strokesynth.engine.averaging`) and synthesises with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from strokesynth.data.augment import AugmentConfig
from strokesynth.data.case import Case
from strokesynth.data.config import DataConfig, make_dataset
from strokesynth.data.datasets import SliceDataset
from strokesynth.data.normalize import NormSpec, from_signed, to_signed
from strokesynth.data.volume import Volume
from strokesynth.engine.averaging import averaged_copy, check_decay, update_average
from strokesynth.engine.config import OptimConfig, RunConfig, make_optimizer
from strokesynth.engine.gan_steps import conditional_gan_step
from strokesynth.engine.inference import case_outputs
from strokesynth.engine.system import SYSTEMS, Runtime, System, autocast
from strokesynth.errors import ConfigError
from strokesynth.losses.adversarial import GAN_MODES, Adversarial
from strokesynth.metrics import brain_mask, lesion_contrast
from strokesynth.nets.blocks import init_weights
from strokesynth.nets.pix2pix import ResnetGenerator, UnetGenerator
from strokesynth.nets.registry import NETWORKS
from strokesynth.plots import panel_row


def _gan_data() -> DataConfig:
    # the paper's affine augmentation: translation, rotation, scaling (no flips); the DWI target
    # scaled by its foreground median (-> 0.4), so its scale does not depend on the lesion
    cfg = DataConfig(augment=AugmentConfig(flip_axes=()))
    cfg.normalization["dwi"] = NormSpec("percentile", 0.0, 50.0, "foreground", clip=True, span=0.4)
    return cfg


GENERATORS = {"resnet": "resnet_generator", "unet": "unet_generator"}


@dataclass
class GeneratorConfig:
    """pix2pix's generator (its ``--netG``): ``resnet`` (:class:`strokesynth.nets.ResnetGenerator`,
    ``n_blocks`` residual blocks; the paper's) or ``unet`` (:class:`strokesynth.nets.UnetGenerator`,
    ``num_downs`` stride-2 levels with skip connections: 7 = pix2pix's ``unet_128``, 8 = ``unet_256``;
    the slice size must be divisible by ``2**num_downs``)."""

    name: Literal["resnet", "unet"] = "resnet"
    ngf: int = 64
    n_blocks: int = 9
    num_downs: int = 7
    dropout: float = 0.5
    test_dropout: bool = True
    norm: Literal["instance", "batch", "none"] = "instance"

    def __post_init__(self) -> None:
        if self.name not in GENERATORS:
            raise ValueError(f"generator.name must be one of {sorted(GENERATORS)}")


@dataclass
class DiscriminatorConfig:
    """Conditional PatchGAN (see :class:`strokesynth.nets.PatchDiscriminator`)."""

    ndf: int = 64
    n_layers: int = 3
    norm: Literal["instance", "batch", "none"] = "instance"


def _gan_optim() -> OptimConfig:
    return OptimConfig(name="adam", lr=2e-4, betas=(0.5, 0.999), schedule="linear_decay", decay_epochs=0)


def _gan_run() -> RunConfig:
    # pix2pix keeps its last epoch, so no inner split is held out: every training subject trains (the paper)
    return RunConfig(epochs=200, batch_size=1, selection="last")


@dataclass
class GANConfig:
    """A CT-to-MR synthesis experiment (Rubin & Abulnaga): pix2pix on CTP slices -> DWI.

    Attributes:
        data: inputs (``data.modalities``, the 5 CTP channels), size, normalisation and
            augmentation; the target is normalised by its own spec (DWI: foreground median ->
            0.4, clipped to [0, 1]) and both sides are mapped to [-1, 1] for the networks.
        target: modality the generator learns (``dwi``).
        gan_loss: ``vanilla`` (BCE, the paper's cGAN), ``lsgan``, ``hinge`` or ``wgan``.
        lambda_l1: weight of the L1 term (100).
        lesion_weight: weight of the L1 term on lesion pixels of the training slice (1: plain L1,
            the paper's). Above 1 it is the lesion-weighted pixel loss of the pseudo-DWI paper
            (SLNet's w-L2, here on L1): a pixel loss's optimum is the median (L1) of what the
            inputs say about a pixel, so where the CTP maps leave core and penumbra ambiguous the
            plain loss draws no lesion; weighting the lesion pushes that estimate up. Measured on
            the demo's cohorts at 20: a brighter lesion, more falsely bright tissue and no gain
            for FCN-CGAN (docs/ctmr.md), so it is off in every shipped config. The logged
            ``loss_g_l1`` is then the weighted L1.
        optim: Adam 2e-4 (0.5, 0.999) for both networks; ``linear_decay`` with
            ``decay_epochs`` > 0 is pix2pix's decay to 0 over the last epochs.
        run: epochs (200 in the paper), batch size 1 (instance norm), seed, device, amp...;
            ``selection: last`` (the last epoch is kept, so the whole training part of each fold
            trains, as in the paper; ``inner`` holds out an inner split whose L1 and lesion
            contrast are logged only).
        sample_every: save a real | generated figure every N epochs (0 = never).
        ema_decay: decay of the moving average of the generator's weights that synthesis uses
            (0: off, the paper; 0.99 averages over about the last 100 generator steps).
    """

    name: str = "ctmr_cgan"
    data: DataConfig = field(default_factory=_gan_data)
    target: str = "dwi"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    gan_loss: Literal["vanilla", "lsgan", "hinge", "wgan"] = "vanilla"
    lambda_l1: float = 100.0
    lesion_weight: float = 1.0
    optim: OptimConfig = field(default_factory=_gan_optim)
    run: RunConfig = field(default_factory=_gan_run)
    sample_every: int = 1
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.gan_loss not in GAN_MODES:
            raise ValueError(f"gan_loss must be one of {GAN_MODES}")
        if not self.lesion_weight >= 1.0:
            raise ConfigError("lesion_weight", f"must be at least 1 (1: plain L1), got {self.lesion_weight}")
        check_decay(self.ema_decay)


def synthesis_dataset(cfg: GANConfig, cases: list[Case], *, with_target: bool, train: bool) -> SliceDataset:
    """Slices of ``cases``: the input channels, plus the target as the last channel if asked."""
    mods = list(cfg.data.modalities) + ([cfg.target] if with_target else [])
    return make_dataset(cases, cfg.data, seed=cfg.run.seed, train=train, modalities=mods, with_label=with_target)


def _generate(g: torch.nn.Module, device: str, amp: str):
    """[0, 1] inputs -> [0, 1] generated images through a tanh generator."""
    def forward(x: torch.Tensor) -> torch.Tensor:
        with autocast(device, amp):
            return from_signed(g(to_signed(x)).float()).clamp(0, 1)
    return forward


@SYSTEMS.register("pix2pix")
class Pix2Pix(System[GANConfig]):
    """pix2pix (see the module docstring): networks ``generator`` and ``discriminator`` (and
    ``generator_ema``, trained by no optimiser, with ``ema_decay`` > 0)."""

    config_class = GANConfig
    monitor = None

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.config = cfg
        self.n_in = len(cfg.data.modalities)
        self.generator = init_weights(NETWORKS.build(GENERATORS[cfg.generator.name], cfg.generator, self.n_in))
        self.discriminator = init_weights(NETWORKS.build("patchgan", cfg.discriminator, self.n_in + 1))
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self.optimizers = {k: make_optimizer(cfg.optim, n.parameters()) for k, n in self.networks.items()}
        self.optim_configs = {k: cfg.optim for k in self.networks}
        self.generator_ema: torch.nn.Module | None = None
        if cfg.ema_decay > 0:
            self.generator_ema = averaged_copy(self.generator)
            self.networks["generator_ema"] = self.generator_ema
        self.generator_steps = 0
        self.adversarial = Adversarial(cfg.gan_loss)

    @property
    def synthesis_generator(self) -> torch.nn.Module:
        """The generator synthesis uses: the weight average when kept, else the generator."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def train_step(self, batch: dict[str, Any], rt: Runtime) -> dict[str, float]:
        img = to_signed(batch["image"].to(rt.device))
        weight = None
        if self.config.lesion_weight != 1.0:
            lesion = (batch["label"].to(rt.device) > 0).float().reshape(img[:, self.n_in:].shape)
            weight = 1.0 + (self.config.lesion_weight - 1.0) * lesion
        loss_d, adv, l1 = conditional_gan_step(img[:, :self.n_in], img[:, self.n_in:], rt, self.adversarial,
                                               self.config.lambda_l1, weight)
        if self.generator_ema is not None:
            update_average(self.generator_ema, self.generator, self.config.ema_decay, self.generator_steps)
        self.generator_steps += 1
        return {"loss_d": loss_d, "loss_g_gan": adv, "loss_g_l1": l1 / 2}  # in [0, 1] units, comparable to val_l1

    def synthesize(self, dataset: SliceDataset, case_index: int, *, device: str, amp: str) -> torch.Tensor:
        """Generated target of one case, ``(Z, 1, H, W)`` in [0, 1] (target space; dropout noise as configured)."""
        return case_outputs(_generate(self.synthesis_generator.eval(), device, amp), dataset, case_index,
                            device=device, channels=slice(0, self.n_in))

    def validate(self, dataset: SliceDataset, rt: Runtime) -> dict[str, float]:
        l1, lesion_l1, gen_c, real_c = [], [], [], []
        for i, case in enumerate(dataset.cases):
            fake = self.synthesize(dataset, i, device=rt.device, amp=rt.amp)
            real = torch.stack([dataset[j]["image"][self.n_in:] for j in dataset.slices_of(i)])
            l1.append(float((fake - real).abs().mean()))
            lesion = case.label.array > 0 if case.label is not None else None
            if lesion is not None and lesion.any():  # the native volumes only where a lesion is scored
                gen = dataset.assemble(i, fake).array
                target = dataset.native_channel(i, dataset.modalities[-1])
                brain = brain_mask(case)
                gen_c.append(lesion_contrast(gen, lesion, brain))
                real_c.append(lesion_contrast(target, lesion, brain))
                lesion_l1.append(float(np.abs(gen[lesion] - target[lesion]).mean()))
        nan = float("nan")
        return {"val_l1": float(np.mean(l1)) if l1 else nan,
                "val_lesion_l1": float(np.mean(lesion_l1)) if lesion_l1 else nan,
                "val_contrast_generated": float(np.nanmean(gen_c)) if gen_c else nan,
                "val_contrast_real": float(np.nanmean(real_c)) if real_c else nan}

    def extra_state(self) -> dict[str, Any]:
        return {"generator_steps": self.generator_steps}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.generator_steps = int(state.get("generator_steps", 0))

    def on_epoch_end(self, epoch: int, folder: Path, val_dataset: SliceDataset | None, rt: Runtime) -> None:
        every, last = self.config.sample_every, self.config.run.epochs
        if val_dataset is None or every <= 0 or (epoch % every and epoch != last):
            return
        flags = [int(val_dataset.cases[c].label.array[:, :, z].sum()) if val_dataset.cases[c].label is not None else 0
                 for c, z in val_dataset.index]
        item = int(np.argmax(flags))
        sample_figure(self.synthesis_generator, val_dataset, item, folder / "samples" / f"epoch_{epoch:03d}.png",
                      f"epoch {epoch}: case {val_dataset.cases[val_dataset.index[item][0]].id} "
                      f"z={val_dataset.index[item][1]}", rt.device)


def sample_figure(g: torch.nn.Module, ds: SliceDataset, item: int, path: Path, title: str, device: str) -> None:
    """Inputs | real | generated | |difference| for one slice of ``ds`` (target as last channel)."""
    s = ds[item]
    x = to_signed(s["image"][None, :-1].to(device))
    with torch.no_grad():
        fake = from_signed(g.eval()(x).float()[0, 0].cpu().numpy())
    real = s["image"][-1].numpy()
    img = s["image"].numpy()
    names = ds.modalities
    show = [i for i, n in enumerate(names) if n in ("ct", "cbf", "tmax")] or [0]
    panels = [(names[i].upper(), img[i], (0.0, 1.0), "gray", "normalised") for i in show]
    panels += [("target DWI", real, (0.0, 1.0), "gray", "normalised"),
               ("generated DWI", fake, (0.0, 1.0), "gray", "normalised"),
               ("|difference|", np.abs(fake - real), (0.0, 0.5), "magma", "normalised")]
    panel_row(panels, path, label=s["label"][0].numpy(), title=title)


def load_generator(path: str | Path) -> tuple[ResnetGenerator | UnetGenerator, GANConfig]:
    """The trained generator of a pix2pix checkpoint (``generator.pt``, ``best.pt`` or ``last.pt``) and its config."""
    from strokesynth.engine.checkpoint import load_system

    system = load_system(path)
    if not isinstance(system, Pix2Pix):
        raise TypeError(f"{path} holds a {system.name} system, not pix2pix")
    return system.synthesis_generator, system.config


@torch.no_grad()
def synthesize_cases(g: ResnetGenerator | UnetGenerator, cfg: GANConfig, cases: list[Case], *, seed: int = 0,
                     test_dropout: bool | None = None) -> Iterator[tuple[Case, Volume]]:
    """Generate the target for each case (slice by slice) and put it back on the case's grid.

    Args:
        test_dropout: override the config's choice of dropout noise at test time.
        seed: seeds the dropout noise, so a synthesis is reproducible; the caller's RNG state
            is restored afterwards.

    Yields:
        ``(case, Volume)`` with the generated (X, Y, Z) float32 image in normalised [0, 1]
        units and the case's affine.
    """
    device, amp = cfg.run.device, cfg.run.amp
    g = g.to(device).eval()
    g.set_test_dropout(cfg.generator.test_dropout if test_dropout is None else test_dropout)
    ds = synthesis_dataset(cfg, cases, with_target=False, train=False)
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        for i, case in enumerate(ds.cases):
            yield case, ds.assemble(i, case_outputs(_generate(g, device, amp), ds, i, device=device))
    finally:
        torch.set_rng_state(state)
