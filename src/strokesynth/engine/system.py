"""The system contract: what a trainable system declares, and the runtime the loop lends it.

A system is the part of a published method that trains: its networks, its optimisers, one
training step and a validation. The fold loop (:func:`strokesynth.engine.loop.fit`) owns all
the rest (seeding, loaders, DDP, autocast and gradient scaling, schedules, history,
checkpoints, resume, early stopping). pix2pix's ``optimize_parameters``, typed::

    @SYSTEMS.register("autoencoder_critic")
    class AE(System):
        monitor, monitor_mode = "val_l1", "min"

        def __init__(self, cfg):
            super().__init__()
            self.networks = {"ae": AutoEncoder(), "critic": Critic()}
            self.optimizers = {k: torch.optim.Adam(n.parameters(), 1e-3) for k, n in self.networks.items()}

        def train_step(self, batch, rt):
            x = batch["image"].to(rt.device)
            with rt.autocast():
                y = rt.net("ae")(x)
            rt.step(discriminator_loss(rt.net("critic")(x), rt.net("critic")(y.detach())), "critic")
            rt.step(F.l1_loss(y, x) + 0.1 * generator_loss(rt.net("critic")(y)), "ae")
            return {"l1": ...}

        def validate(self, dataset, rt):
            return {"val_l1": ...}

Inside ``train_step`` a system reaches its networks through ``rt.net(name)`` (wrapped in
DistributedDataParallel under ``torchrun``), runs forward passes under ``rt.autocast()``,
and calls ``rt.step(loss, name)`` for each update (zero grad, backward with fp16 scaling,
optimiser step). ``self.networks[name]`` is the bare module, for validation and inference.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

import torch
from torch import nn

from strokesynth.registry import Registry


class SystemRegistry(Registry["type[System]"]):
    """The registry of systems: registering a class also gives it its :attr:`System.name` (the one
    name a checkpoint stores), so the two cannot differ."""

    def register(self, name: str, **info: Any) -> Callable[[type[System]], type[System]]:
        add = super().register(name, **info)

        def named(cls: type[System]) -> type[System]:
            cls.name = name
            return add(cls)

        return named


#: trainable systems by name; a checkpoint stores its system's name and resolved config
SYSTEMS: SystemRegistry = SystemRegistry("system", provider="strokesynth.systems")


#: a system's config type
ConfigT = TypeVar("ConfigT")


def autocast(device: str, amp: str) -> contextlib.AbstractContextManager:
    """Autocast context for ``amp`` (``none``, ``bf16``, ``fp16``) on ``device``."""
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


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
        import os

        import torch.distributed as dist

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        return cls(int(os.environ.get("RANK", "0")), world)

    def close(self) -> None:
        """Leave the process group: wait for every rank, then destroy it (no-op for one process).

        Without the barrier a rank with no rank-0 work left tears the group down while rank 0 still
        saves; under gloo that rank was seen to abort (SIGABRT) and take the run down with it.
        """
        import torch.distributed as dist

        if self.world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


class System(abc.ABC, Generic[ConfigT]):
    """Base class of trainable systems (see the module docstring), generic in its config type.

    Class attributes:
        name: registry name, set by ``@SYSTEMS.register(name)``.
        config_class: the typed config a checkpoint's ``config`` is rebuilt as.
        monitor: key of :meth:`validate`'s result that chooses ``best.pt``, drives the
            ``plateau`` schedule and early stopping; ``None`` keeps the last epoch.
        monitor_mode: ``max`` (higher is better) or ``min``.
        find_unused_parameters: passed to DistributedDataParallel.

    Instance attributes (set in ``__init__``):
        networks: name -> module (on the CPU; the loop moves them to the device).
        optimizers: name -> optimiser; a name shared with ``networks`` is that network's.
        config: the system's typed config (saved, resolved, in every checkpoint).
        optim_configs: optimiser name -> its :class:`~strokesynth.engine.config.OptimConfig`,
            from which the loop builds the LR schedule.
        measured: values measured from the training data, not set by the user (``pixel_mm``: the
            training cases' in-plane pixel size in mm; ``class_weights``: the weighted-CE weights of
            this fold). Saved beside the config in every checkpoint; the config stays as resolved.
    """

    name: ClassVar[str] = "system"
    config_class: ClassVar[type | None] = None
    monitor: ClassVar[str | None] = None
    monitor_mode: ClassVar[Literal["min", "max"]] = "max"
    find_unused_parameters: ClassVar[bool] = False

    def __init__(self) -> None:
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.optim_configs: dict[str, Any] = {}
        self.config: ConfigT = None  # type: ignore[assignment] - set by the subclass
        self.measured: dict[str, Any] = {}

    @classmethod
    def restore(cls, cfg: Any, measured: dict[str, Any] | None = None) -> System:
        """The system of a checkpoint's resolved config and measured record (before its weights are loaded)."""
        system = cls(cfg)  # type: ignore[call-arg]
        system.measured = dict(measured or {})
        return system

    # -- the contract -------------------------------------------------------------------
    @abc.abstractmethod
    def train_step(self, batch: dict[str, Any], rt: Runtime) -> dict[str, float]:
        """One training step on ``batch``; returns the losses to log (floats)."""

    def validate(self, dataset: Any, rt: Runtime) -> dict[str, float]:
        """Scores on a validation dataset (never the scored fold unless the protocol says so)."""
        return {}

    # -- optional hooks -----------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> bool:
        """Called before epoch ``epoch`` (0-based), and on resume for the last finished epoch.

        Return True when the optimisers or the set of trainable parameters changed (e.g. the
        end of a frozen-backbone stage), so the loop rebuilds schedules and DDP wrappers.
        """
        return False

    def on_epoch_end(self, epoch: int, folder: Any, val_dataset: Any, rt: Runtime) -> None:
        """Called on the main process after epoch ``epoch`` (1-based) was checkpointed (figures...);
        ``val_dataset`` is the selection dataset, or the training dataset when none is held out."""

    def sample_flags(self, dataset: Any) -> Any:
        """Per-sample booleans: which training samples hold a lesion (for lesion-aware batches).

        The default asks the dataset (``dataset.lesion_flags()``); ``None`` disables it.
        """
        flags = getattr(dataset, "lesion_flags", None)
        return flags() if callable(flags) else None

    # -- applying the trained system (predict, export) -------------------------------------
    #: whether the system segments new cases (``strokesynth predict`` takes it)
    predicts: ClassVar[bool] = False

    @classmethod
    def case_inputs(cls, cfg: ConfigT) -> list[str]:
        """The modalities a new case needs for :meth:`case_probability` (default: ``cfg.data.modalities``)."""
        return list(cfg.data.modalities)  # type: ignore[attr-defined]

    @classmethod
    def case_probability(cls, model: Any, cfg: ConfigT, case: Any) -> tuple[Any, Any]:
        """``(probability, extra)`` of one new case: the lesion probability ``(X, Y, Z)`` float32 on
        the case's grid, and a volume the system also makes (a pseudo-DWI) or ``None``. ``model`` is
        what :meth:`predictor` returned (possibly with networks run by ONNX Runtime)."""
        raise NotImplementedError(f"the {cls.name} system does not segment new cases")

    def predictor(self) -> Any:
        """What :meth:`case_probability` takes as ``model`` (default: the system itself)."""
        return self

    def example_inputs(self, name: str, net: nn.Module) -> tuple[torch.Tensor, ...] | None:
        """A batch-2 example input of network ``name`` for export, or ``None`` (no forward of its own).

        The default probes the first convolution or linear layer: ``(2, C, H, W)`` at the config's
        training size (2D), ``(2, C, X, Y, Z)`` on its grid ``shape`` (3D; else ``(H, W, H)``),
        ``(2, features)``. Batch 2, not 1: ``torch.export`` specialises a dimension of size 1.
        Systems whose networks take something else (a latent, a label map and a latent) override it.
        """
        g = torch.Generator().manual_seed(0)
        if type(net).forward is nn.Module.forward:  # ModuleList / ModuleDict: no forward
            return None
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                h, w = training_size(self.config)
                grid = tuple(int(v) for v in getattr(self.config, "shape", None) or (h, w, h))
                shape = (2, m.in_channels, *(grid if isinstance(m, nn.Conv3d) else (h, w)))
                return (torch.randn(*shape, generator=g),)
            if isinstance(m, nn.Linear):
                return (torch.randn(2, m.in_features, generator=g),)
        return None

    def extra_state(self) -> dict[str, Any]:
        """Anything besides networks/optimisers a resume needs (an image pool, a stage)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""


def training_size(cfg: Any) -> tuple[int, int]:
    """The training slice size ``(H, W)`` of a system config (``data.size`` or ``size``; an int is
    square; ``(64, 64)`` when it declares none)."""
    size = getattr(getattr(cfg, "data", None), "size", None) or getattr(cfg, "size", None)
    if size is None:
        return (64, 64)
    if isinstance(size, int):
        return (size, size)
    h, w = (int(v) for v in size)
    return (h, w)


@dataclass
class Runtime:
    """What the loop lends a system during training: device, precision, wrapped networks, steps."""

    system: System
    device: str = "cpu"
    amp: str = "none"
    dist: Dist = field(default_factory=Dist)
    wrapped: dict[str, nn.Module] = field(default_factory=dict)
    scalers: dict[str, Any] = field(default_factory=dict)

    def net(self, name: str) -> nn.Module:
        """Network ``name`` for training forward passes (DDP-wrapped when distributed)."""
        return self.wrapped.get(name) or self.system.networks[name]

    def autocast(self) -> contextlib.AbstractContextManager:
        """The run's autocast context (none, bf16 or fp16)."""
        return autocast(self.device, self.amp)

    def requires_grad(self, name: str, flag: bool) -> None:
        """pix2pix's ``set_requires_grad``: skip gradients of network ``name`` while another
        network trains through it. A no-op under DDP, whose reducer expects every gradient
        (the stray gradients are cleared by the next ``step`` of that network's optimiser)."""
        if self.dist.world > 1:
            return
        for p in self.system.networks[name].parameters():
            p.requires_grad_(flag)

    def step(self, loss: torch.Tensor, optimizer: str, *, retain_graph: bool = False) -> None:
        """Zero the optimiser's gradients, backpropagate ``loss`` (scaled under fp16), step."""
        opt = self.system.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        scaler = self.scalers.get(optimizer)
        if scaler is not None:
            scaler.scale(loss).backward(retain_graph=retain_graph)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward(retain_graph=retain_graph)
            opt.step()


SystemFactory = Callable[[], System]
