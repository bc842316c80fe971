"""Training of one fold: epochs, validation Dice, plateau LR, early stopping, checkpoints, resume, DDP.

Under ``torchrun --nproc_per_node N`` every process trains on its share of each epoch's
batches (``DistributedSampler``), gradients are averaged by DDP (gloo on CPU, NCCL on GPU),
every process validates on all validation cases (so LR and early-stopping decisions agree
without communication), and only rank 0 writes files.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from strokesynth.data.case import Case
from strokesynth.data.config import fold_datasets
from strokesynth.data.splits import Splits
from strokesynth.engine.checkpoint import load_checkpoint, save_checkpoint
from strokesynth.engine.config import TrainConfig
from strokesynth.engine.models import VOLUMETRIC, autocast, build_model, predict_case
from strokesynth.io.atomic import write_json_atomic, write_text_atomic
from strokesynth.losses import lesion_fraction_weights, make_loss
from strokesynth.metrics import dice


@dataclass
class Dist:
    """This process's place in a (possibly single-process) distributed run."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str) -> Dist:
        """Join the process group torchrun set up (WORLD_SIZE > 1), else a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        return cls(int(os.environ.get("RANK", "0")), world)


def _optimizer(cfg: TrainConfig, params, lr: float) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=o.weight_decay, momentum=o.momentum)
    if o.name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=lr, weight_decay=o.weight_decay, momentum=o.momentum)


def _write_history(folder: Path, history: list[dict[str, Any]]) -> None:
    cols = list(history[0])
    lines = [",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in history]
    write_text_atomic(folder / "metrics.csv", "\n".join(lines) + "\n")
    write_json_atomic(folder / "metrics.json", history)


def train_fold(cfg: TrainConfig, cases: list[Case], splits: Splits, fold: int, folder: Path,
               log: logging.Logger | None = None, ddp: Dist | None = None) -> dict[str, Any]:
    """Train fold ``fold`` into ``folder`` (``last.pt``, ``best.pt``, ``metrics.csv/json``).

    Resumes from ``folder/last.pt`` when present (a run killed mid-epoch restarts that epoch).

    Returns:
        ``best_dice``, ``best_epoch``, ``epochs`` (completed) and ``stopped_early``.
    """
    ddp = ddp or Dist()
    log = log or logging.getLogger("strokesynth.train")
    device = cfg.device
    volumetric = cfg.model.name in VOLUMETRIC
    train_ds, val_ds = fold_datasets(cases, cfg.data, splits, fold, kind="volumes" if volumetric else "slices")
    torch.manual_seed(cfg.seed + 1000 * fold)
    model = build_model(cfg.model, len(cfg.data.modalities)).to(device)
    weights = None
    if cfg.loss.name == "weighted_ce":
        lesion = total = 0
        for i in range(len(train_ds.cases)):
            _, label = train_ds.store.get(i)
            lesion += int((np.asarray(label) > 0).sum())
            total += int(np.asarray(label).size)
        weights = lesion_fraction_weights(lesion, total)
    loss_fn = make_loss(cfg.loss.name, gamma=cfg.loss.gamma, class_weights=weights).to(device)

    stage1 = bool(cfg.model.pretrained) and cfg.fine_tune_epochs > 0 and cfg.model.name == "pspnet"

    def in_stage1(epoch: int) -> bool:
        return stage1 and epoch < cfg.fine_tune_epochs
    state: dict[str, Any] = {"epoch": 0, "best_dice": -1.0, "best_epoch": 0, "bad_epochs": 0, "history": []}
    last = folder / "last.pt"
    ckpt = load_checkpoint(last) if last.exists() else None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        state.update({k: ckpt[k] for k in ("epoch", "best_dice", "best_epoch", "bad_epochs", "history")})
        log.info("fold %d: resumed after epoch %d", fold, state["epoch"])

    def make_opt(epoch: int):
        """Optimiser, scheduler and (DDP-wrapped) network for the fine-tuning stage of ``epoch``."""
        if stage1:
            model.freeze_backbone(in_stage1(epoch))
        params = model.new_parameters() if in_stage1(epoch) else model.parameters()
        o = _optimizer(cfg, params, cfg.fine_tune_lr if in_stage1(epoch) else cfg.optim.lr)
        s = torch.optim.lr_scheduler.ReduceLROnPlateau(o, mode="max", factor=cfg.lr_factor,
                                                       patience=cfg.plateau_patience)
        n = torch.nn.parallel.DistributedDataParallel(model) if ddp.world > 1 else model
        return o, s, n

    opt, sched, net = make_opt(state["epoch"])
    if ckpt is not None and ckpt["stage1"] == in_stage1(state["epoch"]):
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
    if ckpt is not None and "rng" in ckpt:
        torch.set_rng_state(ckpt["rng"])

    sampler = DistributedSampler(train_ds, ddp.world, ddp.rank, shuffle=True, seed=cfg.seed) if ddp.world > 1 else None
    loader = DataLoader(train_ds, batch_size=1 if volumetric else cfg.batch_size, shuffle=sampler is None,
                        sampler=sampler, num_workers=cfg.num_workers, drop_last=not volumetric and len(train_ds) > cfg.batch_size,
                        generator=torch.Generator().manual_seed(cfg.seed + fold), persistent_workers=cfg.num_workers > 0)
    stopped = False
    for epoch in range(state["epoch"], cfg.epochs):
        if stage1 and epoch == cfg.fine_tune_epochs:  # stage 2: everything at the base lr
            opt, sched, net = make_opt(epoch)
        t0 = time.time()
        train_ds.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        net.train()
        losses = []
        steps = cfg.steps_per_epoch or len(loader)
        bar = tqdm(loader, total=min(steps, len(loader)), desc=f"fold {fold} epoch {epoch + 1}", leave=False,
                   disable=not (ddp.main and sys.stderr.isatty()))
        for step, batch in enumerate(bar):
            if step >= steps:
                break
            x, y = batch["image"].to(device), batch["label"].to(device)
            with autocast(device, cfg.amp):
                out = net(x)
            if isinstance(out, tuple):
                loss = loss_fn(out[0].float(), y) + cfg.model.aux_weight * loss_fn(out[1].float(), y)
            else:
                loss = loss_fn(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        val = [dice(predict_case(model, val_ds, i, device=device, amp=cfg.amp).array > cfg.threshold,
                    val_ds.cases[i].label.array > 0) for i in range(len(val_ds.cases))]
        val_dice = float(np.mean(val)) if val else 0.0
        sched.step(val_dice)
        improved = val_dice > state["best_dice"]
        state["bad_epochs"] = 0 if improved else state["bad_epochs"] + 1
        if improved:
            state["best_dice"], state["best_epoch"] = val_dice, epoch + 1
        state["epoch"] = epoch + 1
        row = {"epoch": epoch + 1, "train_loss": round(float(np.mean(losses)) if losses else float("nan"), 6),
               "val_dice": round(val_dice, 6), "lr": opt.param_groups[0]["lr"], "seconds": round(time.time() - t0, 2)}
        state["history"].append(row)
        if ddp.main:
            payload = {"model": model.state_dict(), "epoch": state["epoch"], "best_dice": state["best_dice"],
                       "best_epoch": state["best_epoch"], "bad_epochs": state["bad_epochs"],
                       "history": state["history"], "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                       "stage1": in_stage1(epoch), "rng": torch.get_rng_state(),
                       "model_name": cfg.model.name, "in_channels": len(cfg.data.modalities)}
            if improved:
                save_checkpoint(folder / "best.pt", {"model": model.state_dict(), "epoch": epoch + 1,
                                                     "val_dice": val_dice})
            save_checkpoint(last, payload)
            _write_history(folder, state["history"])
        log.info("fold %d epoch %d: loss %.4f, val Dice %.4f, lr %.2g", fold, epoch + 1, row["train_loss"], val_dice,
                 row["lr"])
        if state["bad_epochs"] >= cfg.early_stop_patience:
            stopped = True
            break
    return {"best_dice": state["best_dice"], "best_epoch": state["best_epoch"], "epochs": state["epoch"],
            "stopped_early": stopped}
