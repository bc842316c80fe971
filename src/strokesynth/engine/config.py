"""The typed config of a segmentation run (YAML: ``configs/seg/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from strokesynth.data.config import DataConfig


@dataclass
class ModelConfig:
    """Which segmenter and its size.

    Attributes:
        name: ``pspnet``, ``unet2d`` (slices), ``unet3d`` or ``vnet`` (whole slabs).
        depth, width: PSPNet's ResNet depth (50/101) and stem width (64 = standard).
        channels: U-Net / V-Net features per level.
        strides: per down step, per axis; 3D default (2, 2, 1) so 2-slice slabs work.
        aux_weight: weight of PSPNet's auxiliary loss.
        pretrained: local torchvision/timm ResNet state dict for PSPNet ('' = none).
        num_classes: 2 (background, core).
    """

    name: Literal["pspnet", "unet2d", "unet3d", "vnet"] = "pspnet"
    depth: int = 50
    width: int = 64
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])
    strides: list[list[int]] = field(default_factory=list)
    aux_weight: float = 0.4
    pretrained: str = ""
    num_classes: int = 2


@dataclass
class LossConfig:
    """``ce``, ``weighted_ce`` (weights from the training lesion fraction), ``focal``, ``dice``, ``generalized_dice``."""

    name: str = "focal"
    gamma: float = 1.0


@dataclass
class OptimConfig:
    """Optimiser (``rmsprop`` as in the paper, ``adam``, ``sgd``) and its settings."""

    name: Literal["rmsprop", "adam", "sgd"] = "rmsprop"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.0


@dataclass
class TrainConfig:
    """A segmentation experiment: data, model, loss, optimiser, schedule, folds, device.

    Attributes:
        epochs: maximum epochs per fold.
        steps_per_epoch: cap on training batches per epoch (0 = the whole training set).
        plateau_patience: epochs without a better validation Dice before lr /= 10.
        early_stop_patience: epochs without a better validation Dice before stopping.
        fine_tune_epochs: with ``model.pretrained``, epochs of stage 1 (new layers only at
            ``fine_tune_lr``, backbone frozen) before everything trains at ``optim.lr``.
        folds_to_run: fold indices (empty = every fold).
        amp: autocast dtype on the device (``none``, ``bf16``, ``fp16``).
        threshold: probability above which a voxel is core.
    """

    name: str = "segmentation"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 200
    batch_size: int = 8
    steps_per_epoch: int = 0
    plateau_patience: int = 20
    lr_factor: float = 0.1
    early_stop_patience: int = 50
    fine_tune_epochs: int = 0
    fine_tune_lr: float = 1e-2
    folds_to_run: list[int] = field(default_factory=list)
    device: str = "cpu"
    amp: Literal["none", "bf16", "fp16"] = "none"
    num_workers: int = 0
    threshold: float = 0.5
    seed: int = 0
