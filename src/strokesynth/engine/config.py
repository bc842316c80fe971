"""The two config parts every system shares: how a run trains (:class:`RunConfig`) and how its
networks are optimised (:class:`OptimConfig`), with the builders the loop uses.

A system's own config holds one ``run`` and one ``optim`` (a GAN may hold one per network);
shipped YAML lists only what differs from these defaults, and each run folder keeps the full
resolved dump.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch

from strokesynth.config import bounded
from strokesynth.errors import ConfigError

_DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps")


def check_device(device: str, where: str = "run.device") -> str:
    """``device`` if it names a torch device this toolkit runs on (``cpu``, ``cuda``, ``cuda:N``, ``mps``).

    Raises:
        ConfigError: anything else, named as ``where``.
    """
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise ConfigError(where, f"unknown device {device!r}: give cpu, cuda, cuda:N or mps")
    return device


def cpu_has_bf16_matrix_units(cpuinfo: str | None = None) -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (Intel AMX-BF16: ``amx_bf16`` in
    ``/proc/cpuinfo``'s flags). Elsewhere (AVX-512 without AMX, ARM without SME...) bf16 autocast
    runs on converted fp32 units and is often slower than fp32 (measured: PSPNet-R50 inference
    1.47x slower on an AMD EPYC with AVX-512)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as fh:
                cpuinfo = fh.read()
        except OSError:
            return False
    return any(line.startswith("flags") and "amx_bf16" in line.split() for line in cpuinfo.splitlines())


PRECISIONS = ("auto", "fp32", "bf16")


def inference_amp(device: str, precision: str = "auto") -> Literal["none", "bf16"]:
    """The autocast setting for inference: ``fp32`` -> ``none``, ``bf16`` -> ``bf16``; ``auto``
    picks bf16 where it pays (a CUDA device with bf16 support, a CPU with AMX-BF16) and fp32
    elsewhere, so the default is chosen per machine rather than assumed."""
    if precision not in PRECISIONS:
        raise ConfigError("precision", f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if precision != "auto":
        return "none" if precision == "fp32" else "bf16"
    kind = torch.device(device).type
    if kind == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "none"
    return "bf16" if kind == "cpu" and cpu_has_bf16_matrix_units() else "none"


@dataclass
class RunConfig:
    """How one cross-validated run trains; the one owner of the seed and the folds.

    Attributes:
        epochs: maximum epochs per fold.
        batch_size: samples per step (per process under ``torchrun``).
        steps_per_epoch: training steps per epoch (0 = one pass over the training samples).
        folds: subject-level cross-validation folds.
        folds_to_run: fold indices to train (empty = every fold).
        seed: the one seed: splits, weights, batches, augmentation, dropout noise.
        device: ``cpu``, ``cuda``, ``cuda:1``...
        amp: autocast dtype: ``none``, ``bf16``, or ``fp16`` (with a gradient scaler).
        num_workers: data-loader worker processes (results do not depend on it).
        threads: torch intra-op threads (0 = leave torch's default); fixed threads make float
            results repeatable on one machine.
        selection: which checkpoint is kept as ``best.pt`` and later scored:
            ``inner`` (default) - the best epoch on an inner validation split of the fold's
            *training* subjects; ``last`` - the last epoch, no validation data needed;
            ``heldout`` - the best epoch on the scored fold itself, the optimistic protocol of
            the papers (reports label it so).
        inner_fraction: share of the training subjects held out for ``inner`` selection
            (stratified by lesion presence; at least one subject).
        early_stop_patience: epochs without a better monitored value before stopping (0 = never).
        lesion_fraction: share of every training batch drawn from samples that contain a lesion
            (0 = uniform shuffling); the rest is drawn from all samples.
        val_every: validate every N epochs (and at the last epoch).
    """

    epochs: int = bounded(200, lo=1, hi=1_000_000)
    batch_size: int = bounded(8, lo=1, hi=65_536)
    steps_per_epoch: int = bounded(0, lo=0, hi=100_000_000)
    folds: int = bounded(5, lo=1, hi=1000)
    folds_to_run: list[int] = bounded(factory=list, lo=0)
    seed: int = bounded(0, lo=0, hi=2**63 - 1)
    device: str = "cpu"
    amp: Literal["none", "bf16", "fp16"] = "none"
    num_workers: int = bounded(0, lo=0, hi=256)
    threads: int = bounded(0, lo=0, hi=4096)
    selection: Literal["inner", "last", "heldout"] = "inner"
    inner_fraction: float = bounded(0.2, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    early_stop_patience: int = bounded(0, lo=0)
    lesion_fraction: float = bounded(0.0, lo=0.0, hi=1.0)
    val_every: int = bounded(1, lo=1)

    def __post_init__(self) -> None:
        check_device(self.device)
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("run", "epochs and batch_size must be at least 1")
        if not 0.0 <= self.lesion_fraction <= 1.0:
            raise ConfigError("run.lesion_fraction", f"must be in [0, 1], got {self.lesion_fraction}")
        if not 0.0 < self.inner_fraction < 1.0:
            raise ConfigError("run.inner_fraction", f"must be in (0, 1), got {self.inner_fraction}")

    def fold_list(self) -> list[int]:
        """The folds to train, checked against ``folds``."""
        folds = self.folds_to_run or list(range(self.folds))
        bad = [f for f in folds if not 0 <= f < self.folds]
        if bad:
            raise ConfigError("run.folds_to_run", f"fold(s) {bad} outside 0..{self.folds - 1}")
        return folds


@dataclass
class OptimConfig:
    """One optimiser and its learning-rate schedule.

    Attributes:
        name: ``adam``, ``adamw``, ``rmsprop`` or ``sgd``.
        lr: base learning rate.
        betas: Adam's (beta1, beta2) (pix2pix: 0.5, 0.999).
        weight_decay, momentum: as in ``torch.optim``.
        schedule: ``constant``; ``plateau`` (lr x ``factor`` after ``patience`` epochs without a
            better monitored value); ``linear_decay`` (pix2pix: constant, then linearly to 0 over
            the last ``decay_epochs``); ``cosine`` (to 0 over all epochs); ``step`` (lr x
            ``factor`` at each epoch of ``milestones``: the pseudo-DWI paper's x0.2 after 180 of
            300 epochs).
        patience, factor: of ``plateau`` (``factor`` also of ``step``).
        milestones: epochs (0-based, counted from the start) where ``step`` multiplies the lr.
        decay_epochs: of ``linear_decay``.
    """

    name: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"
    lr: float = bounded(1e-3, lo=0.0, lo_open=True)
    betas: tuple[float, float] = bounded((0.9, 0.999), lo=0.0, hi=1.0, hi_open=True)
    weight_decay: float = bounded(0.0, lo=0.0)
    momentum: float = bounded(0.0, lo=0.0, hi=1.0, hi_open=True)
    schedule: Literal["constant", "plateau", "linear_decay", "cosine", "step"] = "constant"
    patience: int = bounded(20, lo=0)
    factor: float = bounded(0.1, lo=0.0, hi=1.0, lo_open=True)
    decay_epochs: int = bounded(0, lo=0)
    milestones: list[int] = bounded(factory=list, lo=0)


def make_optimizer(cfg: OptimConfig, params: Iterable[torch.nn.Parameter], lr: float | None = None
                   ) -> torch.optim.Optimizer:
    """The optimiser ``cfg`` names over ``params`` (at ``lr`` instead of ``cfg.lr`` if given)."""
    lr = cfg.lr if lr is None else lr
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)
    return torch.optim.SGD(params, lr=lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)


def make_scheduler(cfg: OptimConfig, opt: torch.optim.Optimizer, epochs: int, mode: str = "max"):
    """The epoch-wise scheduler of ``cfg`` for ``opt`` (``None`` for ``constant``).

    ``plateau`` is stepped with the monitored value (``mode`` says whether higher is better),
    the others without arguments once per epoch.
    """
    if cfg.schedule == "constant":
        return None
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=cfg.factor, patience=cfg.patience)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.factor)
    start = epochs - cfg.decay_epochs

    def factor(epoch: int) -> float:  # pix2pix's linear decay over the last decay_epochs
        return 1.0 - max(0, epoch - start) / float(cfg.decay_epochs + 1) if cfg.decay_epochs > 0 else 1.0

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
