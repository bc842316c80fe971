"""Training and out-of-fold synthesis of the CT-to-MR cGAN (pix2pix on CTP slices -> DWI).

One training step is pix2pix's: generate ``G(x)``; update D on ``concat(x, y)`` (real) and
``concat(x, G(x).detach())`` (fake), its loss halved; then update G with the adversarial loss
on ``concat(x, G(x))`` plus ``lambda_l1 * |G(x) - y|``. Inputs and target are normalised to
[0, 1] by the data layer and mapped to [-1, 1] for the networks.

:func:`train_gan_fold` trains on the training cases of one fold, with per-epoch checkpoints
(``last.pt``, resumable), ``metrics.csv/json`` and real | generated sample figures;
:func:`synthesize_cases` applies the fold's generator to cases it never saw and returns the
generated target on each case's own grid (in normalised [0, 1] units, with the case affine).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from strokesynth.data.case import Case
from strokesynth.data.datasets import SliceDataset
from strokesynth.data.normalize import Normalization
from strokesynth.data.splits import Splits
from strokesynth.data.volume import Volume
from strokesynth.engine.checkpoint import load_checkpoint, save_checkpoint
from strokesynth.engine.gan_config import DiscriminatorConfig, GANConfig, GeneratorConfig
from strokesynth.engine.models import autocast
from strokesynth.engine.trainer import _write_history
from strokesynth.nets import PatchDiscriminator, ResnetGenerator
from strokesynth.report.figures import panel_row


def build_generator(cfg: GeneratorConfig, in_channels: int, out_channels: int = 1) -> ResnetGenerator:
    """The ResNet generator of ``cfg``."""
    return ResnetGenerator(in_channels, out_channels, cfg.ngf, cfg.n_blocks, dropout=cfg.dropout,
                           test_dropout=cfg.test_dropout, norm=cfg.norm)


def build_discriminator(cfg: DiscriminatorConfig, in_channels: int) -> PatchDiscriminator:
    """The conditional PatchGAN of ``cfg`` (``in_channels`` = condition + target channels)."""
    return PatchDiscriminator(in_channels, cfg.ndf, cfg.n_layers, norm=cfg.norm)


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """pix2pix's init: conv weights ~ N(0, gain), biases 0; BN weights ~ N(1, gain)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def gan_loss(logits: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """Adversarial loss of PatchGAN ``logits`` against all-real or all-fake targets."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


def _lr_factor(cfg: GANConfig, epoch: int) -> float:
    """pix2pix's linear decay over the last ``decay_epochs`` (1 before them)."""
    if cfg.decay_epochs <= 0:
        return 1.0
    start = cfg.epochs - cfg.decay_epochs
    return 1.0 - max(0, epoch - start) / float(cfg.decay_epochs + 1)


def slice_dataset(cfg: GANConfig, cases: list[Case], *, with_target: bool, train: bool) -> SliceDataset:
    """Slices of ``cases``: the input channels, plus the target as the last channel if asked."""
    d = cfg.data
    mods = list(d.modalities) + ([cfg.target] if with_target else [])
    return SliceDataset(cases, mods, label_key=d.label if with_target else None, size=d.size, mode=d.mode,
                        normalization=Normalization(dict(d.normalization)),
                        augment=d.augment if train and d.augment_enabled else None, seed=d.seed,
                        cache_dir=Path(d.cache_dir) if d.cache_dir else None)


def _sample_figure(g: nn.Module, ds: SliceDataset, item: int, names: list[str], path: Path, title: str,
                   device: str) -> None:
    s = ds[item]
    x = s["image"][None, :-1].to(device) * 2 - 1
    with torch.no_grad():
        fake = (g(x).float()[0, 0].cpu().numpy() + 1) / 2
    real = s["image"][-1].numpy()
    img = s["image"].numpy()
    show = [i for i, n in enumerate(names) if n in ("ct", "cbf", "tmax")] or [0]
    panels = [(names[i].upper(), img[i], (0.0, 1.0), "gray") for i in show]
    panels += [("real DWI", real, (0.0, 1.0), "gray"), ("generated DWI", fake, (0.0, 1.0), "gray"),
               ("|difference|", np.abs(fake - real), (0.0, 0.5), "magma")]
    panel_row(panels, path, label=s["label"][0].numpy(), title=title)


def train_gan_fold(cfg: GANConfig, cases: list[Case], splits: Splits, fold: int, folder: Path,
                   log: logging.Logger | None = None) -> dict[str, Any]:
    """Train the cGAN of ``fold`` on its training cases into ``folder``.

    Writes ``last.pt`` (generator, discriminator, optimisers, history, RNG; resumed from when
    present), ``generator.pt`` (the final generator for synthesis), ``metrics.csv/json`` (per
    epoch: D loss, G adversarial and L1 losses, held-out L1 in [0, 1] units) and
    ``samples/epoch_NNN.png``. Nothing of the held-out fold is used for any choice: the final
    generator is the last one, and the held-out L1 is only logged.

    Returns:
        ``epochs`` completed and the last history row.
    """
    log = log or logging.getLogger("strokesynth.gan")
    device = cfg.device
    by_id = {c.id: c for c in cases}
    f = splits.folds[fold]
    train_ds = slice_dataset(cfg, [by_id[c] for c in f.train_cases], with_target=True, train=True)
    val_ds = slice_dataset(cfg, [by_id[c] for c in f.val_cases], with_target=True, train=False)
    n_in = len(cfg.data.modalities)
    torch.manual_seed(cfg.seed + 1000 * fold)
    g = init_weights(build_generator(cfg.generator, n_in)).to(device)
    d = init_weights(build_discriminator(cfg.discriminator, n_in + 1)).to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
    state: dict[str, Any] = {"epoch": 0, "history": []}
    last = folder / "last.pt"
    if last.exists():
        ck = load_checkpoint(last)
        g.load_state_dict(ck["generator"])
        d.load_state_dict(ck["discriminator"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        state.update(epoch=ck["epoch"], history=ck["history"])
        torch.set_rng_state(ck["rng"])
        log.info("gan fold %d: resumed after epoch %d", fold, state["epoch"])
    loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.num_workers,
                        drop_last=len(train_ds) > cfg.batch_size,
                        generator=torch.Generator().manual_seed(cfg.seed + fold + 1000 * state["epoch"]))
    lesion_px = [int(val_ds.cases[c].label.array[:, :, z].sum()) if val_ds.cases[c].label is not None else 0
                 for c, z in val_ds.index]
    sample_item = int(np.argmax(lesion_px))
    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.time()
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * _lr_factor(cfg, epoch)
        train_ds.set_epoch(epoch)
        g.train()
        d.train()
        sums = {"loss_d": 0.0, "loss_g_gan": 0.0, "loss_g_l1": 0.0}
        steps = min(cfg.steps_per_epoch or len(loader), len(loader))
        bar = tqdm(loader, total=steps, desc=f"cGAN fold {fold} epoch {epoch + 1}", leave=False,
                   disable=not sys.stderr.isatty())
        n = 0
        for step, batch in enumerate(bar):
            if step >= steps:
                break
            img = batch["image"].to(device) * 2 - 1
            x, y = img[:, :n_in], img[:, n_in:]
            with autocast(device, cfg.amp):
                fake = g(x)
            # discriminator: real pairs -> 1, generated pairs -> 0
            for p in d.parameters():
                p.requires_grad_(True)
            opt_d.zero_grad(set_to_none=True)
            with autocast(device, cfg.amp):
                loss_d = 0.5 * (gan_loss(d(torch.cat([x, fake.detach()], 1)).float(), False, cfg.gan_loss)
                                + gan_loss(d(torch.cat([x, y], 1)).float(), True, cfg.gan_loss))
            loss_d.backward()
            opt_d.step()
            # generator: fool D, stay close to the target in L1
            for p in d.parameters():
                p.requires_grad_(False)
            opt_g.zero_grad(set_to_none=True)
            with autocast(device, cfg.amp):
                adv = gan_loss(d(torch.cat([x, fake], 1)).float(), True, cfg.gan_loss)
            l1 = F.l1_loss(fake.float(), y)
            (adv + cfg.lambda_l1 * l1).backward()
            opt_g.step()
            sums["loss_d"] += float(loss_d.detach())
            sums["loss_g_gan"] += float(adv.detach())
            sums["loss_g_l1"] += float(l1.detach()) / 2  # in [0, 1] units, comparable to val_l1
            n += 1
            bar.set_postfix(l1=f"{sums['loss_g_l1'] / n:.4f}")
        val_l1 = _held_out_l1(g, val_ds, n_in, device, cfg.amp)
        row = {"epoch": epoch + 1, **{k: round(v / max(n, 1), 6) for k, v in sums.items()},
               "val_l1": round(val_l1, 6), "lr": opt_g.param_groups[0]["lr"], "seconds": round(time.time() - t0, 2)}
        state["epoch"] = epoch + 1
        state["history"].append(row)
        save_checkpoint(last, {"generator": g.state_dict(), "discriminator": d.state_dict(),
                               "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "epoch": state["epoch"],
                               "history": state["history"], "rng": torch.get_rng_state()})
        _write_history(folder, state["history"])
        if cfg.sample_every > 0 and ((epoch + 1) % cfg.sample_every == 0 or epoch + 1 == cfg.epochs):
            _sample_figure(g.eval(), val_ds, sample_item, val_ds.modalities, folder / "samples" /
                           f"epoch_{epoch + 1:03d}.png", f"fold {fold}, epoch {epoch + 1}: held-out "
                           f"{val_ds.cases[val_ds.index[sample_item][0]].id} z={val_ds.index[sample_item][1]}", device)
        log.info("gan fold %d epoch %d: D %.4f, G adv %.4f, G L1 %.4f, held-out L1 %.4f", fold, epoch + 1,
                 row["loss_d"], row["loss_g_gan"], row["loss_g_l1"], val_l1)
    save_checkpoint(folder / "generator.pt", {"model": g.state_dict(), "epoch": state["epoch"],
                                              "in_channels": n_in, "modalities": list(cfg.data.modalities)})
    return {"epochs": state["epoch"], "last": state["history"][-1] if state["history"] else {}}


@torch.no_grad()
def _held_out_l1(g: nn.Module, ds: SliceDataset, n_in: int, device: str, amp: str, batch: int = 16) -> float:
    """Mean |G(x) - y| over every held-out slice, in normalised [0, 1] units (dropout noise as at test)."""
    g.eval()
    total, count = 0.0, 0
    for lo in range(0, len(ds), batch):
        img = torch.stack([ds[i]["image"] for i in range(lo, min(lo + batch, len(ds)))]).to(device)
        with autocast(device, amp):
            fake = (g(img[:, :n_in] * 2 - 1).float() + 1) / 2
        total += float((fake - img[:, n_in:]).abs().sum())
        count += fake.numel()
    return total / max(count, 1)


def load_generator(cfg: GANConfig, path: str | Path) -> ResnetGenerator:
    """A trained generator from ``generator.pt`` (or a fold's ``last.pt``)."""
    ck = load_checkpoint(path)
    g = build_generator(cfg.generator, len(cfg.data.modalities))
    g.load_state_dict(ck["model"] if "model" in ck else ck["generator"])
    return g


@torch.no_grad()
def synthesize_cases(g: ResnetGenerator, cfg: GANConfig, cases: list[Case], *, seed: int = 0,
                     test_dropout: bool | None = None, batch: int = 16) -> Iterator[tuple[Case, Volume]]:
    """Generate the target for each case (slice by slice) and put it back on the case's grid.

    Args:
        test_dropout: override the config's choice of dropout noise at test time.
        seed: seeds the dropout noise, so a synthesis is reproducible.

    Yields:
        ``(case, Volume)`` with the generated (X, Y, Z) float32 image in normalised [0, 1]
        units and the case's affine.
    """
    g = g.to(cfg.device).eval()
    g.set_test_dropout(cfg.generator.test_dropout if test_dropout is None else test_dropout)
    ds = slice_dataset(cfg, cases, with_target=False, train=False)
    state = torch.get_rng_state()
    torch.manual_seed(seed)  # the dropout noise; the caller's RNG state is restored afterwards
    try:
        for i, case in enumerate(ds.cases):
            items = ds.slices_of(i)
            outs = []
            for lo in range(0, len(items), batch):
                x = torch.stack([ds[j]["image"] for j in items[lo:lo + batch]]).to(cfg.device) * 2 - 1
                with autocast(cfg.device, cfg.amp):
                    outs.append(((g(x).float() + 1) / 2).clamp(0, 1).cpu())
            yield case, ds.assemble(i, torch.cat(outs))
    finally:
        torch.set_rng_state(state)


def brain_mask(case: Case) -> np.ndarray:
    """Where image-quality metrics are taken: non-zero perfusion maps (skull-stripped), else all voxels."""
    for key in ("cbf", "cbv", "tmax", "mtt"):
        if key in case:
            return np.asarray(case[key].array) != 0
    return np.ones(case.spatial_shape, bool)
