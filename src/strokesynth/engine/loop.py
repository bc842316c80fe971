"""The one fold loop every system trains with: :func:`fit`.

It owns what every system needs, so a system writes only its networks, optimisers,
``train_step`` and ``validate`` (see :mod:`strokesynth.engine.system`):

- seeding (one seed: weights, batches, augmentation and dropout all follow from it) and
  fixed intra-op threads when asked;
- the data loader with epoch-seeded, lesion-aware batches, split across ``torchrun``
  processes (:class:`~strokesynth.engine.sampling.EpochBatches`);
- DistributedDataParallel wrappers (gloo on CPU, NCCL on GPU), autocast (bf16; fp16 with one
  gradient scaler per optimiser);
- LR schedules from each optimiser's config, stepped once per epoch (``plateau`` with the
  monitored value);
- per-epoch history (``metrics.csv`` / ``metrics.json``), ``last.pt`` after every epoch with every
  network, optimiser, scheduler, scaler, the RNG states and the system's extra state, and
  ``best.pt`` chosen on the system's monitor key (the last epoch when it has none), early
  stopping;
- resume: a folder with ``last.pt`` continues after its last finished epoch and reproduces the
  uninterrupted run; a run that stopped early is not trained again, and one that finished its
  epochs trains on only if ``run.epochs`` was raised.

Only rank 0 writes files. Every rank validates on the whole validation set, so schedules and
early stopping agree without communication.
"""

from __future__ import annotations

import logging
import math
import random
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from strokesynth import __version__
from strokesynth.config import to_dict
from strokesynth.engine.checkpoint import load_checkpoint, save_checkpoint
from strokesynth.engine.config import RunConfig, make_scheduler
from strokesynth.engine.sampling import EpochBatches
from strokesynth.engine.system import Dist, Runtime, System, SystemFactory
from strokesynth.errors import DataError
from strokesynth.runs import RunDir

CHECKPOINT_FORMAT = "strokesynth-checkpoint/2"


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy's and Python's global generators."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
             "numpy": [int(pos), int(has_gauss), float(gauss)], "python": _py_state(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _py_state(state: tuple) -> list:
    return [state[0], list(state[1]), state[2]]


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, g = state["python"]
    random.setstate((version, tuple(internal), g))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def network_payload(system: System, epoch: int, **extra: Any) -> dict[str, Any]:
    """A self-describing checkpoint of ``system``'s networks: the system's registry name and
    resolved config (and what was measured from its training data) travel with the weights, so :func:`strokesynth.engine.checkpoint.load_system`
    rebuilds it from the file alone."""
    return {"format": CHECKPOINT_FORMAT, "strokesynth_version": __version__, "system": system.name,
            "config": to_dict(system.config), "measured": dict(system.measured), "epoch": epoch,
            "networks": {k: n.state_dict() for k, n in system.networks.items()}, **extra}


class _Training:
    """The mutable parts of one :func:`fit` call (schedulers, wrappers, progress state)."""

    def __init__(self, system: System, run: RunConfig, dist: Dist) -> None:
        self.system, self.run, self.dist = system, run, dist
        scaler_on = run.amp == "fp16"
        self.rt = Runtime(system, run.device, run.amp, dist,
                          scalers={k: torch.amp.GradScaler(torch.device(run.device).type) for k in system.optimizers}
                          if scaler_on else {})
        self.schedulers: dict[str, Any] = {}
        self.state: dict[str, Any] = {"epoch": 0, "best": None, "best_epoch": 0, "bad_epochs": 0, "history": [],
                                      "stopped_early": False}

    def rebuild(self) -> None:
        """Schedulers for the current optimisers and DDP wrappers for the current trainable networks."""
        s = self.system
        self.schedulers = {}
        for name, opt in s.optimizers.items():
            cfg = s.optim_configs.get(name)
            sched = make_scheduler(cfg, opt, self.run.epochs, s.monitor_mode) if cfg is not None else None
            if sched is not None:
                self.schedulers[name] = sched
        if self.run.amp == "fp16":
            for name in s.optimizers:
                self.rt.scalers.setdefault(name, torch.amp.GradScaler(torch.device(self.run.device).type))
        self.rt.wrapped = {}
        if self.dist.world > 1:
            for name, net in s.networks.items():
                if any(p.requires_grad for p in net.parameters()):
                    self.rt.wrapped[name] = torch.nn.parallel.DistributedDataParallel(
                        net, find_unused_parameters=s.find_unused_parameters)

    def checkpoint(self) -> dict[str, Any]:
        s = self.system
        return network_payload(
            s, self.state["epoch"], state=dict(self.state),
            optimizers={k: o.state_dict() for k, o in s.optimizers.items()},
            schedulers={k: v.state_dict() for k, v in self.schedulers.items()},
            scalers={k: v.state_dict() for k, v in self.rt.scalers.items()},
            rng=_rng_state(), extra=s.extra_state())

    def restore(self, ck: dict[str, Any], where: Path) -> None:
        s = self.system
        if ck.get("system") != s.name or set(ck.get("networks", {})) != set(s.networks):
            raise DataError(where, f"checkpoint of system {ck.get('system')!r} with networks "
                                   f"{sorted(ck.get('networks', {}))}, not {s.name!r} with {sorted(s.networks)}")
        for k, sd in ck["networks"].items():
            s.networks[k].load_state_dict(sd)
        self.state.update(ck["state"])
        if self.state["epoch"] > 0:
            s.on_epoch_start(self.state["epoch"] - 1)  # the optimisers in use when it was saved
        self.rebuild()
        for k, sd in ck["optimizers"].items():
            s.optimizers[k].load_state_dict(sd)
        for k, sd in ck["schedulers"].items():
            if k in self.schedulers:
                self.schedulers[k].load_state_dict(sd)
        for k, sd in ck["scalers"].items():
            if k in self.rt.scalers:
                self.rt.scalers[k].load_state_dict(sd)
        s.load_extra_state(ck.get("extra", {}))
        _set_rng_state(ck["rng"])


def _improved(value: float | None, best: float | None, mode: str) -> bool:
    """Is ``value`` at least as good as ``best``? A tie counts: the later, longer-trained epoch is
    kept (a selection subject whose lesion no epoch finds scores 0 throughout, and must not keep
    the untrained epoch 1)."""
    if value is None or not math.isfinite(value):
        return False
    return best is None or (value >= best if mode == "max" else value <= best)


def fit(system: System | SystemFactory, train: Dataset, val: Dataset | None, folder: str | Path, run: RunConfig,
        *, seed: int | None = None, log: logging.Logger | None = None, dist: Dist | None = None,
        desc: str = "") -> dict[str, Any]:
    """Train ``system`` on ``train`` into ``folder``, validating on ``val`` (see the module docstring).

    Args:
        system: a system, or a function building one (called after seeding, so the initial
            weights follow the seed; pass a function whenever the weights matter).
        train: the training dataset (samples are dicts; ``set_epoch`` is called if it exists).
        val: the selection dataset (an inner split of the training subjects in the default
            protocol), or ``None`` to keep the last epoch.
        seed: the seed of this fold (default ``run.seed``).
        desc: progress-bar and log prefix (e.g. ``fold 2``).

    Returns:
        ``epochs`` finished, ``best_epoch``, ``best`` (monitored value or ``None``),
        ``monitor``, ``stopped_early``, the per-epoch ``history`` and the ``system`` itself
        (trained, kept weights not loaded).
    """
    folder = Path(folder)
    dist = dist or Dist()
    log = log or logging.getLogger("strokesynth.fit")
    seed = run.seed if seed is None else seed
    if run.threads > 0:
        torch.set_num_threads(run.threads)
    seed_everything(seed)
    if not isinstance(system, System):
        system = system()
    for net in system.networks.values():
        net.to(run.device)
    t = _Training(system, run, dist)
    last = folder / "last.pt"
    if last.exists():
        t.restore(load_checkpoint(last), last)
        log.info("%s: resumed after epoch %d", desc or folder.name, t.state["epoch"])
        if dist.main:  # a kill between last.pt and the history files leaves them one epoch behind
            RunDir(folder).save_table("metrics.csv", t.state["history"])
            RunDir(folder).save_json("metrics.json", t.state["history"])
    else:
        t.rebuild()
    state = t.state
    if state["stopped_early"]:  # a finished run is not trained again
        return _result(system, state)

    flags = system.sample_flags(train) if run.lesion_fraction > 0 else None
    sampler = EpochBatches(len(train), run.batch_size, steps=run.steps_per_epoch, seed=seed, lesion_flags=flags,
                           lesion_fraction=run.lesion_fraction, rank=dist.rank, world=dist.world)
    loader = DataLoader(train, batch_sampler=sampler, num_workers=run.num_workers,
                        persistent_workers=run.num_workers > 0, generator=torch.Generator().manual_seed(seed))
    monitor, mode = system.monitor, system.monitor_mode
    out = RunDir(folder)
    for epoch in range(state["epoch"], run.epochs):
        if system.on_epoch_start(epoch):
            t.rebuild()
        t0 = time.time()
        if hasattr(train, "set_epoch"):
            train.set_epoch(epoch)
        sampler.set_epoch(epoch)
        for net in system.networks.values():
            net.train()
        sums: dict[str, float] = {}
        n = 0
        bar = tqdm(loader, total=len(sampler), desc=f"{desc} epoch {epoch + 1}".strip(), leave=False,
                   disable=not (dist.main and sys.stderr.isatty()))
        for batch in bar:
            logs = system.train_step(batch, t.rt)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
            if logs:
                first = next(iter(logs))
                bar.set_postfix({first: f"{sums[first] / n:.4f}"})
        row: dict[str, Any] = {"epoch": epoch + 1, **{k: round(v / max(n, 1), 6) for k, v in sums.items()}}
        vals: dict[str, float] = {}
        if val is not None and ((epoch + 1) % run.val_every == 0 or epoch + 1 == run.epochs):
            for net in system.networks.values():
                net.eval()
            with torch.no_grad():
                vals = system.validate(val, t.rt)
            row.update({k: round(float(v), 6) for k, v in vals.items()})
        value = vals.get(monitor) if monitor else None
        for sched in t.schedulers.values():
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if value is not None and math.isfinite(value):
                    sched.step(value)
            else:
                with warnings.catch_warnings():
                    # an optimiser idle this epoch (a stage of a system that trains its networks
                    # in turn) still follows the epoch-wise schedule; PyTorch warns about the order
                    warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
                    sched.step()
        improved = _improved(value, state["best"], mode)
        strictly = improved and (state["best"] is None or value != state["best"])
        keep = improved or monitor is None or val is None or state["best"] is None
        if improved:
            state["best"] = float(value)
        # patience counts epochs without a strictly better value
        state["bad_epochs"] = 0 if strictly else state["bad_epochs"] + (value is not None)
        if keep:
            state["best_epoch"] = epoch + 1
        state["epoch"] = epoch + 1
        first_opt = next(iter(system.optimizers.values()), None)
        row.update(lr=first_opt.param_groups[0]["lr"] if first_opt else float("nan"), seconds=round(time.time() - t0, 2))
        state["history"].append(row)
        stop = run.early_stop_patience > 0 and state["bad_epochs"] >= run.early_stop_patience
        state["stopped_early"] = stop
        if dist.main:
            if keep:
                save_checkpoint(folder / "best.pt", network_payload(system, epoch + 1, monitor=monitor, value=value))
            save_checkpoint(last, t.checkpoint())
            out.save_table("metrics.csv", state["history"])
            out.save_json("metrics.json", state["history"])
            system.on_epoch_end(epoch + 1, folder, val if val is not None else train, t.rt)
        log.info("%s epoch %d: %s", desc or folder.name, epoch + 1,
                 ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch" and isinstance(v, float)))
        if stop:
            break
    return _result(system, state)


def _result(system: System, state: dict[str, Any]) -> dict[str, Any]:
    return {"epochs": state["epoch"], "best_epoch": state["best_epoch"], "best": state["best"],
            "monitor": system.monitor, "stopped_early": state["stopped_early"], "history": list(state["history"]),
            "system": system}
