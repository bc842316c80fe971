"""The typed config of a CT-to-MR cGAN run (YAML: ``configs/ctmr/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from strokesynth.data.augment import AugmentConfig
from strokesynth.data.config import DataConfig
from strokesynth.data.normalize import NormSpec


def _gan_data() -> DataConfig:
    # the paper's affine augmentation: translation, rotation, scaling (no flips); the DWI target
    # scaled by its foreground median (-> 0.4), so its scale does not depend on the lesion
    cfg = DataConfig(augment=AugmentConfig(flip_axes=()))
    cfg.normalization["dwi"] = NormSpec("percentile", 0.0, 50.0, "foreground", clip=True, span=0.4)
    return cfg


@dataclass
class GeneratorConfig:
    """pix2pix ResNet generator (see :class:`strokesynth.nets.ResnetGenerator`)."""

    ngf: int = 64
    n_blocks: int = 9
    dropout: float = 0.5
    test_dropout: bool = True
    norm: Literal["instance", "batch", "none"] = "instance"


@dataclass
class DiscriminatorConfig:
    """Conditional PatchGAN (see :class:`strokesynth.nets.PatchDiscriminator`)."""

    ndf: int = 64
    n_layers: int = 3
    norm: Literal["instance", "batch", "none"] = "instance"


@dataclass
class GANConfig:
    """A CT-to-MR synthesis experiment (Rubin & Abulnaga): pix2pix on CTP slices -> DWI.

    Attributes:
        data: inputs (``data.modalities``, the 5 CTP channels), size, normalisation,
            augmentation and folds; the target is normalised by its own spec (DWI: foreground
            median -> 0.4, clipped to [0, 1]; see :mod:`strokesynth.data.normalize`) and both
            sides are mapped to [-1, 1] for the networks.
        target: modality the generator learns (``dwi``).
        gan_loss: ``vanilla`` (BCE with logits, the paper's cGAN) or ``lsgan``.
        lambda_l1: weight of the L1 term (100).
        lr, betas: Adam settings of both networks.
        epochs: epochs per fold (200 in the paper).
        decay_epochs: of those, the last ones with the lr decaying linearly to 0 (pix2pix's
            schedule; 0 keeps it constant).
        batch_size: 1 in the paper (instance norm makes batch 1 natural).
        steps_per_epoch: cap on training steps per epoch (0 = every training slice).
        sample_every: save a real | generated figure every N epochs.
        folds_to_run: fold indices (empty = every fold).
        amp: autocast dtype (``none``, ``bf16``, ``fp16``).
        seed: the one seed (weights, batches, augmentation, dropout noise at synthesis).
    """

    name: str = "ctmr_cgan"
    data: DataConfig = field(default_factory=_gan_data)
    target: str = "dwi"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    gan_loss: Literal["vanilla", "lsgan"] = "vanilla"
    lambda_l1: float = 100.0
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    epochs: int = 200
    decay_epochs: int = 0
    batch_size: int = 1
    steps_per_epoch: int = 0
    sample_every: int = 1
    folds_to_run: list[int] = field(default_factory=list)
    device: str = "cpu"
    amp: Literal["none", "bf16", "fp16"] = "none"
    num_workers: int = 0
    seed: int = 0
