"""Segmenters (PSPNet, U-Net 2D/3D, V-Net) as one system on the fold loop.

:class:`Segmenter` trains any registered segmentation network with any registered loss (plus
an optional soft-Dice term), PSPNet's auxiliary head and the two-stage fine-tuning of a
pretrained backbone. Its validation scores lesion scans and lesion-free scans apart, and the
monitored value is the mean Dice over the *lesion* scans of the selection set, so a model that
predicts nothing never wins the checkpoint choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from strokesynth.config import bounded
from strokesynth.data.config import DataConfig, make_dataset
from strokesynth.data.datasets import SliceDataset, VolumeDataset
from strokesynth.data.volume import Volume
from strokesynth.engine.config import OptimConfig, RunConfig, make_optimizer
from strokesynth.engine.inference import case_outputs
from strokesynth.engine.system import SYSTEMS, Runtime, System, autocast
from strokesynth.losses import lesion_fraction_weights, make_loss
from strokesynth.metrics import dice
from strokesynth.nets.registry import NETWORKS


@dataclass
class ModelConfig:
    """Which segmenter and its size.

    Attributes:
        name: a segmentation network of the registry: ``pspnet``, ``unet2d`` (slices),
            ``unet3d`` or ``vnet`` (whole slabs); the pseudo-DWI paper's ``unet`` (classic,
            batch norm), ``slnet`` (switchable norm + SE) and its ablations ``slnet_no_se``,
            ``slnet_no_sn`` and its Table 3's ``resunet`` (MONAI residual U-Net), ``r2unet``
            (Alom et al.) and ``fcn`` (FCN-8s) (slices;
            ``channels`` 64..1024 in the paper); ``basicunet`` (MONAI's
            ``BasicUNet`` with 5 ``channels``: the plain-U-Net floor of the comparison recipe).
        depth, width: PSPNet's ResNet depth (50/101) and stem width (64 = standard).
        channels: U-Net / V-Net features per level.
        strides: per down step, per axis; 3D default (2, 2, 1) so 2-slice slabs work.
        norm: U-Net / V-Net normalisation (``batch``, ``instance``, ``group``, ``none``).
        encoder_norm: 3D U-Net: normalisation of the encoder blocks ('' = ``norm``; ``none`` as
            Platscher et al.'s, whose encoder has none).
        aux_weight: weight of PSPNet's auxiliary loss.
        pretrained: local torchvision/timm ResNet state dict for PSPNet ('' = none).
        num_classes: 2 (background, core).
        dropout: U-Net 3D dropout after every conv (0; 0.02 in Platscher et al.'s 3D U-Net).
    """

    name: Literal["pspnet", "unet2d", "unet3d", "vnet", "unet", "slnet", "slnet_no_se", "slnet_no_sn", "resunet",
                  "r2unet", "fcn", "basicunet"] = "pspnet"
    depth: int = 50
    width: int = bounded(64, lo=1, hi=4096)
    channels: list[int] = bounded(factory=lambda: [32, 64, 128, 256, 512], lo=1, hi=16384, min_len=1)
    strides: list[list[int]] = field(default_factory=list)
    norm: str = "batch"
    encoder_norm: str = ""
    aux_weight: float = bounded(0.4, lo=0.0)
    pretrained: str = ""
    num_classes: int = bounded(2, lo=2, hi=2)
    dropout: float = bounded(0.0, lo=0.0, hi=1.0, hi_open=True)

    @property
    def volumetric(self) -> bool:
        return NETWORKS.info(self.name)["dims"] == 3


@dataclass
class LossConfig:
    """A registered loss (``ce``, ``weighted_ce``, ``focal``, ``dice``, ``generalized_dice``), plus
    ``dice_weight`` x soft lesion Dice (0 = the named loss alone, as the papers).

    ``class_weights`` (background, lesion) of ``weighted_ce``: ``None`` (default) measures them on
    each fold's training data (:func:`training_class_weights`) into the system's ``measured``
    record, saved in that fold's checkpoints beside the config; a list is used as given.
    """

    name: str = "focal"
    gamma: float = bounded(1.0, lo=0.0)
    dice_weight: float = bounded(0.0, lo=0.0)
    class_weights: list[float] | None = bounded(None, lo=0.0)


def _seg_optim() -> OptimConfig:
    return OptimConfig(name="rmsprop", lr=1e-4, schedule="plateau", patience=20, factor=0.1)


@dataclass
class TrainConfig:
    """A segmentation experiment: data, model, loss, optimiser, run.

    Segmenters draw half of every batch from slices with a lesion by default
    (``run.lesion_fraction: 0.5``): with lesions in a few per cent of the slices, uniform batches
    teach "predict nothing" first (measured on the phantom: held-out lesion Dice 0.05 instead of
    0.34 after 12 epochs).

    Attributes:
        fine_tune_epochs: with ``model.pretrained``, epochs of stage 1 (new layers only at
            ``fine_tune_lr``, backbone frozen) before everything trains at ``optim.lr``.
        threshold: probability above which a voxel is core.
    """

    name: str = "segmentation"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=_seg_optim)
    run: RunConfig = field(default_factory=lambda: RunConfig(lesion_fraction=0.5))
    fine_tune_epochs: int = bounded(0, lo=0)
    fine_tune_lr: float = bounded(1e-2, lo=0.0, lo_open=True)
    threshold: float = bounded(0.5, lo=0.0, hi=1.0, lo_open=True, hi_open=True)


def pretraining_warning(cfg: TrainConfig) -> str | None:
    """The line a run prints, logs and reports when a config that fine-tunes a pretrained PSPNet in
    two stages (``fine_tune_epochs`` > 0, as Abulnaga & Rubin) has no backbone file to start from."""
    if cfg.model.name != "pspnet" or cfg.fine_tune_epochs <= 0 or cfg.model.pretrained:
        return None
    return (f"WARNING: {cfg.name}: PSPNet trains from scratch. The paper fine-tunes an ImageNet-pretrained "
            f"ResNet-{cfg.model.depth} in two stages; without one the {cfg.fine_tune_epochs} stage-1 epoch(s) are "
            "skipped and the results are not the paper's set-up. Name a local torchvision/timm ResNet state dict "
            "with --set model.pretrained=PATH (nothing is downloaded).")


def build_model(cfg: ModelConfig, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """The network of ``cfg`` (the named pretrained backbone loaded unless ``pretrained`` is False)."""
    return NETWORKS.build(cfg.name, cfg, in_channels, pretrained=pretrained)


def main_logits(out: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The main output of a model that may also return auxiliary logits."""
    return out[0] if isinstance(out, tuple) else out


def predict_case(model: nn.Module, dataset: SliceDataset | VolumeDataset, case_index: int, *, device: str = "cpu",
                 amp: str = "none", batch_size: int = 16) -> Volume:
    """Lesion probability of one case as an (X, Y, Z) float32 Volume on the case's grid, with its affine."""
    model.eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        with autocast(device, amp):
            return main_logits(model(x)).float().softmax(1)[:, 1:2]

    out = case_outputs(forward, dataset, case_index, device=device, batch_size=batch_size)
    return dataset.assemble(case_index, out)


def training_class_weights(dataset: SliceDataset | VolumeDataset) -> list[float]:
    """Weighted-CE weights from the lesion fraction of the training voxels."""
    lesion = total = 0
    for i in range(len(dataset.cases)):
        _, label = dataset.store.get(i)
        lesion += int((np.asarray(label) > 0).sum())
        total += int(np.asarray(label).size)
    return lesion_fraction_weights(lesion, total)


@SYSTEMS.register("segmenter")
class Segmenter(System[TrainConfig]):
    """One segmentation network trained with one loss (see the module docstring).

    Validation (``validate``) gives ``val_dice`` (mean Dice over the selection set's lesion
    scans; the monitored value), ``val_dice_all``, ``val_fp_ml`` (mean false-positive volume on
    its lesion-free scans) and ``val_empty_ok`` (share of those predicted empty).
    """

    predicts = True

    @classmethod
    def case_probability(cls, model: nn.Module, cfg: TrainConfig, case: Any) -> tuple[np.ndarray, None]:
        """The lesion probability of one new case (every slice, or the volume for a 3D model)."""
        ds = make_dataset([case], cfg.data, seed=cfg.run.seed, with_label=False,
                          kind="volumes" if cfg.model.volumetric else "slices")
        return predict_case(model, ds, 0, device=cfg.run.device, amp=cfg.run.amp).array, None

    def predictor(self) -> nn.Module:
        return self.networks["model"].eval()

    config_class = TrainConfig
    monitor = "val_dice"
    monitor_mode = "max"

    def __init__(self, cfg: TrainConfig, *, train_dataset: SliceDataset | VolumeDataset | None = None,
                 pretrained: bool = True, measured: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.measured = dict(measured or {})
        if cfg.loss.name == "weighted_ce" and cfg.loss.class_weights is None and train_dataset is not None:
            self.measured["class_weights"] = training_class_weights(train_dataset)  # this fold's
        self.config = cfg
        self.model = build_model(cfg.model, len(cfg.data.modalities), pretrained=pretrained)
        self.networks = {"model": self.model}
        weights = None
        if cfg.loss.name == "weighted_ce":
            weights = cfg.loss.class_weights or self.measured.get("class_weights")
        self.loss = make_loss(cfg.loss.name, gamma=cfg.loss.gamma, class_weights=weights,
                              dice_weight=cfg.loss.dice_weight)
        self.stage1 = bool(cfg.model.pretrained) and cfg.fine_tune_epochs > 0 and hasattr(self.model,
                                                                                          "freeze_backbone")
        self._stage: bool | None = None
        self.optim_configs = {"model": cfg.optim}
        self.optimizers = {"model": make_optimizer(cfg.optim, self.model.parameters())}

    @classmethod
    def restore(cls, cfg: TrainConfig, measured: dict[str, Any] | None = None) -> Segmenter:
        """The system of a checkpoint's config and measured record, without loading pretrained backbones."""
        return cls(cfg, pretrained=False, measured=measured)

    def on_epoch_start(self, epoch: int) -> bool:
        stage1 = self.stage1 and epoch < self.config.fine_tune_epochs
        if not self.stage1 or stage1 == self._stage:
            return False
        self._stage = stage1
        self.model.freeze_backbone(stage1)
        params = self.model.new_parameters() if stage1 else self.model.parameters()
        lr = self.config.fine_tune_lr if stage1 else self.config.optim.lr
        self.optimizers["model"] = make_optimizer(self.config.optim, params, lr=lr)
        return True

    def train_step(self, batch: dict[str, Any], rt: Runtime) -> dict[str, float]:
        x, y = batch["image"].to(rt.device), batch["label"].to(rt.device)
        with rt.autocast():
            out = rt.net("model")(x)
        if isinstance(out, tuple):
            loss = self.loss(out[0].float(), y) + self.config.model.aux_weight * self.loss(out[1].float(), y)
        else:
            loss = self.loss(out.float(), y)
        rt.step(loss, "model")
        return {"train_loss": float(loss.detach())}

    def validate(self, dataset: SliceDataset | VolumeDataset, rt: Runtime) -> dict[str, float]:
        lesion_dice, all_dice, fp_ml, empty_ok = [], [], [], []
        for i, case in enumerate(dataset.cases):
            prob = predict_case(self.model, dataset, i, device=rt.device, amp=rt.amp)
            pred = prob.array > self.config.threshold
            ref = case[dataset.label_key].array > 0
            d = dice(pred, ref)
            all_dice.append(d)
            if ref.any():
                lesion_dice.append(d)
            else:
                fp_ml.append(float(pred.sum()) * float(np.prod(case.spacing)) / 1000.0)
                empty_ok.append(float(not pred.any()))
        nan = float("nan")
        return {"val_dice": float(np.mean(lesion_dice)) if lesion_dice else nan,
                "val_dice_all": float(np.mean(all_dice)) if all_dice else nan,
                "val_fp_ml": float(np.mean(fp_ml)) if fp_ml else nan,
                "val_empty_ok": float(np.mean(empty_ok)) if empty_ok else nan}
