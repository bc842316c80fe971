"""Pseudo-DWI synthesis and SLNet (Wang, Song et al., ISLES 2018 winner) as one system.

Networks (2D, axial slices):

- Φe ``extractor``: U-Net on the bolus window I* (C_e = 6 frames of the raw CTP) -> F_h;
- Φg ``generator``: U-Net on concat(F_o = CBF, CBV, MTT, Tmax; F_l = temporal MIP; F_h) -> DWI;
- Φc ``context``: the context encoder of the high-level loss ℓ_h (:mod:`strokesynth.nets.context`);
- Φs ``segmenter``: SLNet (or any registered 2D segmenter) on the pseudo-DWI -> lesion.

Losses: L_g = ℓ_l + γ·ℓ_h with ℓ_l the A-weighted L2 (:mod:`strokesynth.losses.synthesis`);
L_e = L_g applied to F_h; L_s = L_WCE + L_HGD. End to end, L = L_s + α·L_g + β·L_e (one
optimiser over Φe, Φg, Φs); ``subsequent`` trains Φe (L_e), then Φg (L_g), then Φs (L_s) in
turn, each with the earlier networks frozen. ``synthesis`` trains Φe and Φg only (Tables 1-2),
``segmentation`` only Φs on real inputs (maps, the CTA window or the real DWI: Table 5's
reference rows). The generator and extractor end in a sigmoid: images live in [0, 1], the DWI
scaled by its minimum and 99th percentile as the paper does.

**How Φc is trained** (the paper says "jointly" and no more): minimising ℓ_h over Φc's own
weights collapses it to a constant (ℓ_h = 0 for any image), so Φc has its own objective: it
learns to tell from the *real* DWI whether a slice holds a lesion (binary cross entropy
through ``head``), and ℓ_h compares the 16 lesion-aware features of the pseudo and the real
DWI. Φc is updated by its own optimiser only; ℓ_h trains the generator.

Optional adversarial term (Table 1's GAN rows): ``gan_weight > 0`` adds a least-squares
multi-scale PatchGAN (full and half resolution) on concat(generator inputs, image).

Inference needs no DWI: raw CTP -> CTA features, perfusion maps -> pseudo-DWI -> lesion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from strokesynth.config import bounded
from strokesynth.data.case import Case
from strokesynth.data.config import DataConfig, make_dataset
from strokesynth.data.datasets import SliceDataset
from strokesynth.data.volume import Volume
from strokesynth.engine.config import OptimConfig, RunConfig, make_optimizer
from strokesynth.engine.inference import case_outputs
from strokesynth.engine.system import SYSTEMS, Runtime, System, autocast
from strokesynth.errors import ConfigError
from strokesynth.losses import make_loss
from strokesynth.losses.adversarial import Adversarial
from strokesynth.losses.synthesis import SYNTHESIS_LOSSES, lesion_weight_map, synthesis_loss
from strokesynth.metrics import brain_mask, dice, image_quality
from strokesynth.nets import UNet
from strokesynth.nets.blocks import init_weights
from strokesynth.nets.context import ContextEncoder
from strokesynth.nets.registry import NETWORKS
from strokesynth.perfusion.cta import CTA_KEYS, CtaConfig, with_cta_features

GENERATOR_INPUTS = ("maps", "mip", "features")
SEG_INPUTS = ("pseudo_dwi", "pseudo_dwi+maps", "maps", "cta", "real_dwi")
MODES = ("end_to_end", "subsequent", "synthesis", "segmentation")
PSEUDO = "dwi_pseudo"


def _paper_data() -> DataConfig:
    # F_o: the four perfusion maps; no augmentation (the paper reports none)
    return DataConfig(modalities=["cbf", "cbv", "mtt", "tmax"], augment_enabled=False)


def _paper_optim() -> OptimConfig:
    return OptimConfig(name="rmsprop", lr=2e-3, schedule="step", factor=0.2, milestones=[180])


@dataclass
class SegNetConfig:
    """Φs: a registered 2D segmenter (``slnet``, ``unet``, ``slnet_no_se``, ``slnet_no_sn``,
    ``resunet``, ``r2unet``, ``fcn``, ``unet2d``) with ``channels`` per level (64..1024 in the paper) and its loss."""

    name: str = "slnet"
    channels: list[int] = bounded(factory=lambda: [64, 128, 256, 512, 1024], lo=1, hi=16384, min_len=1)
    num_classes: int = bounded(2, lo=2, hi=2)
    norm: str = "batch"
    loss: str = "wce_hgd"


@dataclass
class PseudoDwiConfig:
    """The pseudo-DWI system (see the module docstring).

    Attributes:
        data: ``data.modalities`` are the perfusion maps F_o; the CTA features are added from
            the raw 4D CTP (``ctp``) of every case; the target is ``target`` (DWI).
        cta: bolus-window rule (K) and frames C_e.
        mode: ``end_to_end``, ``subsequent``, ``synthesis`` or ``segmentation``.
        generator_inputs: any of ``maps`` (F_o), ``mip`` (F_l), ``features`` (F_h from Φe).
        seg_input: what Φs sees: ``pseudo_dwi``, ``pseudo_dwi+maps``, or (mode ``segmentation``)
            ``maps``, ``cta`` (the bolus window I*) or ``real_dwi``.
        extractor_channels, generator_channels: U-Net features per level of Φe and Φg.
        segmenter: Φs and its loss.
        synthesis_loss: ``l1``, ``l2``, ``wl2``, ``wl2_ctx`` (the paper's L_g) or ``none`` (GAN only).
        lesion_weight, distance: w and D of the weight map A (D in pixels of the network grid).
        gamma: weight of ℓ_h in ``wl2_ctx``; alpha, beta: weights of L_g and L_e in L.
        reduction: ``norm`` (the paper's ‖·‖₂ and ‖·‖₁ per image) or ``mean`` (per-pixel means);
            see :mod:`strokesynth.losses.synthesis` for why it matters end to end.
        gan_weight: weight of the LSGAN term (0 = none).
        stages: ``subsequent``: the epochs at which Φg, then Φs, start (default: thirds; without
            Φe, halves).
        optim: RMSprop 2e-3, x0.2 after 180 of 300 epochs (paper).
        run: 300 epochs, batch 5, batches drawn uniformly (paper); the ``tiny`` config draws half
            of each batch from lesion slices (``run.lesion_fraction``), which is what makes its
            networks learn in minutes.
        threshold: probability above which a pixel is lesion.
    """

    name: str = "pseudo_dwi"
    data: DataConfig = field(default_factory=_paper_data)
    target: str = "dwi"
    cta: CtaConfig = field(default_factory=CtaConfig)
    mode: Literal["end_to_end", "subsequent", "synthesis", "segmentation"] = "end_to_end"
    generator_inputs: list[str] = field(default_factory=lambda: list(GENERATOR_INPUTS))
    seg_input: str = "pseudo_dwi"
    extractor_channels: list[int] = bounded(factory=lambda: [32, 64, 128, 256], lo=1, hi=16384, min_len=1)
    generator_channels: list[int] = bounded(factory=lambda: [64, 128, 256, 512, 1024], lo=1, hi=16384, min_len=1)
    segmenter: SegNetConfig = field(default_factory=SegNetConfig)
    synthesis_loss: str = "wl2_ctx"
    lesion_weight: float = bounded(1.5, lo=0.0)
    distance: float = bounded(50.0, lo=0.0, lo_open=True)
    gamma: float = bounded(1.2, lo=0.0)
    alpha: float = bounded(1.0, lo=0.0)
    beta: float = bounded(1.0, lo=0.0)
    reduction: Literal["norm", "mean"] = "norm"
    gan_weight: float = bounded(0.0, lo=0.0)
    stages: list[int] = bounded(factory=list, lo=0)
    optim: OptimConfig = field(default_factory=_paper_optim)
    run: RunConfig = field(default_factory=lambda: RunConfig(epochs=300, batch_size=5, lesion_fraction=0.0))
    threshold: float = bounded(0.5, lo=0.0, hi=1.0, lo_open=True, hi_open=True)

    def __post_init__(self) -> None:
        check_config(self)

    # -- what the config implies --------------------------------------------------------
    @property
    def generates(self) -> bool:
        return self.mode != "segmentation"

    @property
    def segments(self) -> bool:
        return self.mode != "synthesis"

    @property
    def extracts(self) -> bool:
        return self.generates and "features" in self.generator_inputs

    def needs_cta(self) -> bool:
        """Whether the cases need the CTA features (hence the raw 4D CTP)."""
        return (self.generates and bool({"mip", "features"} & set(self.generator_inputs))) or self.seg_input == "cta"


def check_config(cfg: PseudoDwiConfig) -> None:
    """One-line errors for inconsistent settings (called on construction)."""
    if cfg.mode not in MODES:
        raise ConfigError("mode", f"unknown mode {cfg.mode!r} (choose from {', '.join(MODES)})")
    bad = [i for i in cfg.generator_inputs if i not in GENERATOR_INPUTS]
    if bad or (cfg.mode != "segmentation" and not cfg.generator_inputs):
        raise ConfigError("generator_inputs", f"choose one or more of {', '.join(GENERATOR_INPUTS)}, got "
                                              f"{cfg.generator_inputs}")
    if cfg.seg_input not in SEG_INPUTS:
        raise ConfigError("seg_input", f"unknown input {cfg.seg_input!r} (choose from {', '.join(SEG_INPUTS)})")
    real = cfg.seg_input in ("maps", "cta", "real_dwi")
    if cfg.mode == "segmentation" and not real:
        raise ConfigError("seg_input", f"mode 'segmentation' trains on real inputs (maps, cta, real_dwi), "
                                       f"not {cfg.seg_input!r}")
    if cfg.mode in ("end_to_end", "subsequent") and real:
        raise ConfigError("seg_input", f"mode {cfg.mode!r} segments the pseudo-DWI; use mode 'segmentation' "
                                       f"for {cfg.seg_input!r}")
    if cfg.synthesis_loss not in (*SYNTHESIS_LOSSES, "none"):
        raise ConfigError("synthesis_loss", f"unknown loss {cfg.synthesis_loss!r} "
                                            f"(choose from {', '.join(SYNTHESIS_LOSSES)}, none)")
    if cfg.synthesis_loss == "none" and cfg.gan_weight <= 0:
        raise ConfigError("synthesis_loss", "'none' needs gan_weight > 0 (a GAN-only generator)")
    if cfg.cta.frames < 1 or cfg.cta.k < 1:
        raise ConfigError("cta", "k and frames must be positive")


class Channels:
    """Where each input sits in the dataset's channel stack ``(C, H, W)``.

    Order: the maps F_o, then ``cta_mip`` and ``cta_bolus`` (C_e frames) if the config needs
    them, then the target DWI when present (training, validation, Table 5's real-DWI row).
    """

    def __init__(self, cfg: PseudoDwiConfig, with_target: bool) -> None:
        self.modalities = list(cfg.data.modalities)
        n = len(self.modalities)
        self.maps = slice(0, n)
        self.mip = self.bolus = None
        if cfg.needs_cta():
            self.modalities += ["cta_mip", "cta_bolus"]
            self.mip, self.bolus = slice(n, n + 1), slice(n + 1, n + 1 + cfg.cta.frames)
            n += 1 + cfg.cta.frames
        self.target = None
        if with_target:
            self.modalities.append(cfg.target)
            self.target = slice(n, n + 1)
            n += 1
        self.total = n


def prepare_cases(cfg: PseudoDwiConfig, cases: list[Case]) -> list[Case]:
    """The cases with their CTA features added when the config needs them and they lack them
    (a case that has them keeps its own, so features computed once serve every fold)."""
    if not cfg.needs_cta():
        return list(cases)
    return [c if all(k in c for k in CTA_KEYS) else with_cta_features(c, cfg.cta) for c in cases]


def pseudo_dwi_dataset(cfg: PseudoDwiConfig, cases: list[Case], *, with_target: bool, train: bool,
                       with_label: bool = True) -> SliceDataset:
    """Slices of ``cases`` (CTA features added) with the channels of :class:`Channels`."""
    mods = Channels(cfg, with_target).modalities
    return make_dataset(prepare_cases(cfg, cases), cfg.data, seed=cfg.run.seed, train=train, modalities=mods,
                        with_label=with_label)


def _unet(cin: int, channels: list[int]) -> nn.Module:
    return init_weights(UNet(2, cin, 1, channels), kind="xavier", gain=1.0)


@SYSTEMS.register("pseudo_dwi")
class PseudoDwi(System[PseudoDwiConfig]):
    """The pseudo-DWI system (see the module docstring)."""

    predicts = True

    @classmethod
    def case_inputs(cls, cfg: PseudoDwiConfig) -> list[str]:
        """The perfusion maps, the raw 4D CTP where the generator takes CTA features, and the real
        DWI where the segmenter reads it instead of the pseudo-DWI."""
        extra = (["ctp"] if cfg.needs_cta() else []) + ([cfg.target] if cfg.seg_input == "real_dwi" else [])
        return [*cfg.data.modalities, *extra]

    @classmethod
    def case_probability(cls, model: PseudoDwi, cfg: PseudoDwiConfig, case: Any) -> tuple[np.ndarray, Volume | None]:
        """The lesion probability of one new case and its pseudo-DWI."""
        ds = pseudo_dwi_dataset(cfg, [case], with_target=cfg.seg_input == "real_dwi", train=False, with_label=False)
        pseudo, prob = model.predict(ds, 0, device=cfg.run.device, amp=cfg.run.amp)
        if prob is None:
            raise ConfigError("model", "this pseudo-DWI model only synthesises (mode 'synthesis'); it has no segmenter")
        return prob.array, pseudo

    config_class = PseudoDwiConfig
    monitor: str | None = "val_dice"
    monitor_mode = "max"

    def __init__(self, cfg: PseudoDwiConfig) -> None:
        super().__init__()
        self.config = cfg
        self.ch = Channels(cfg, with_target=True)
        self.networks: dict[str, nn.Module] = {}
        if cfg.extracts:
            self.networks["extractor"] = _unet(cfg.cta.frames, cfg.extractor_channels)
        if cfg.generates:
            self.networks["generator"] = _unet(self._generator_in(), cfg.generator_channels)
            if cfg.synthesis_loss == "wl2_ctx":
                self.networks["context"] = ContextEncoder(1)
            if cfg.gan_weight > 0:
                d_in = self._generator_in() + 1
                self.networks["discriminator"] = init_weights(nn.ModuleList([
                    NETWORKS.build("patchgan", _PatchCfg(), d_in) for _ in range(2)]))
        if cfg.segments:
            seg = cfg.segmenter
            self.networks["segmenter"] = init_weights(NETWORKS.build(seg.name, seg, self._segmenter_in()),
                                                      kind="xavier", gain=1.0)
            self.seg_loss = make_loss(seg.loss, lesion_weight=cfg.lesion_weight, distance=cfg.distance)
        if not cfg.segments:
            self.monitor = None  # a synthesis keeps its last epoch, as pix2pix
        self.adversarial = Adversarial("lsgan")
        self.stage: int | None = None
        self.optim_configs = {"main": cfg.optim}
        self.optimizers = {"main": make_optimizer(cfg.optim, self._trainable(None))}
        for extra in ("context", "discriminator"):
            if extra in self.networks:
                self.optimizers[extra] = make_optimizer(cfg.optim, self.networks[extra].parameters())
                self.optim_configs[extra] = cfg.optim

    # -- layout -------------------------------------------------------------------------
    def _generator_in(self) -> int:
        cfg = self.config
        return ((len(cfg.data.modalities) if "maps" in cfg.generator_inputs else 0)
                + ("mip" in cfg.generator_inputs) + ("features" in cfg.generator_inputs))

    def _segmenter_in(self) -> int:
        cfg = self.config
        return {"pseudo_dwi": 1, "pseudo_dwi+maps": 1 + len(cfg.data.modalities), "maps": len(cfg.data.modalities),
                "cta": cfg.cta.frames, "real_dwi": 1}[cfg.seg_input]

    def _stage_bounds(self) -> tuple[int, int]:
        cfg = self.config
        if cfg.stages:
            return int(cfg.stages[0]), int(cfg.stages[-1])
        e = cfg.run.epochs
        return (e // 3, 2 * e // 3) if cfg.extracts else (0, e // 2)

    def _stage_of(self, epoch: int) -> int | None:
        if self.config.mode != "subsequent":
            return None
        a, b = self._stage_bounds()
        return 0 if epoch < a else 1 if epoch < b else 2

    def _trainable(self, stage: int | None):
        names = {0: ["extractor"], 1: ["generator"], 2: ["segmenter"]}.get(stage, ["extractor", "generator",
                                                                                     "segmenter"])
        return [p for n in names if n in self.networks for p in self.networks[n].parameters()]

    def on_epoch_start(self, epoch: int) -> bool:
        stage = self._stage_of(epoch)
        if stage is None or stage == self.stage:
            return False
        self.stage = stage
        active = {0: "extractor", 1: "generator", 2: "segmenter"}[stage]
        for name in ("extractor", "generator", "segmenter"):
            if name in self.networks:
                self.networks[name].requires_grad_(name == active)
        self.optimizers["main"] = make_optimizer(self.config.optim, self._trainable(stage))
        return True

    # -- forward passes -----------------------------------------------------------------
    def synthesize(self, x: torch.Tensor, nets: dict[str, nn.Module] | None = None
                   ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(pseudo-DWI ``(B, 1, H, W)``, F_h ``(B, 1, H, W)`` or None) of an input batch in [0, 1]."""
        cfg, ch = self.config, self.ch
        nets = nets or self.networks
        if not cfg.generates:
            return None, None
        parts, fh = [], None
        if "maps" in cfg.generator_inputs:
            parts.append(x[:, ch.maps])
        if "mip" in cfg.generator_inputs:
            parts.append(x[:, ch.mip])
        if cfg.extracts:
            fh = torch.sigmoid(nets["extractor"](x[:, ch.bolus]))
            parts.append(fh)
        return torch.sigmoid(nets["generator"](torch.cat(parts, 1))), fh

    def segmenter_input(self, x: torch.Tensor, pseudo: torch.Tensor | None) -> torch.Tensor:
        """What Φs sees for ``seg_input`` (see the config)."""
        ch, kind = self.ch, self.config.seg_input
        if kind == "pseudo_dwi":
            return pseudo
        if kind == "pseudo_dwi+maps":
            return torch.cat([pseudo, x[:, ch.maps]], 1)
        if kind == "maps":
            return x[:, ch.maps]
        if kind == "cta":
            return x[:, ch.bolus]
        return x[:, ch.target]

    def _gen_condition(self, x: torch.Tensor) -> torch.Tensor:
        cfg, ch = self.config, self.ch
        parts = [x[:, ch.maps]] if "maps" in cfg.generator_inputs else []
        if "mip" in cfg.generator_inputs:
            parts.append(x[:, ch.mip])
        if cfg.extracts:
            parts.append(x[:, ch.bolus].mean(1, keepdim=True))  # a fixed stand-in for F_h in D's condition
        return torch.cat(parts, 1)

    def _d_logits(self, rt: Runtime, cond: torch.Tensor, img: torch.Tensor) -> list[torch.Tensor]:
        d = rt.net("discriminator")
        pair = torch.cat([cond, img], 1)
        return [d[0](pair), d[1](F.avg_pool2d(pair, 2))]

    # -- the contract -------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any], rt: Runtime) -> dict[str, float]:
        cfg, ch = self.config, self.ch
        x = batch["image"].to(rt.device)
        y = batch["label"].to(rt.device)
        real = x[:, ch.target]
        a = lesion_weight_map(y, cfg.lesion_weight, cfg.distance)
        logs: dict[str, float] = {}
        stage = self.stage
        if stage is not None:  # frozen networks keep their batch statistics
            for n, net in self.networks.items():
                net.train(n == ("extractor", "generator", "segmenter")[stage] or n in ("context", "discriminator"))
        if "context" in self.networks and stage in (None, 1):
            # Φc learns lesion-aware features from the real DWI (see the module docstring)
            has = (y.flatten(1) > 0).any(1).float()
            with rt.autocast():
                loss_c = F.binary_cross_entropy_with_logits(rt.net("context").classify(real).float(), has)
            rt.step(loss_c, "context")
            logs["loss_context"] = float(loss_c.detach())
        nets = {n: rt.net(n) for n in self.networks}
        with rt.autocast():
            pseudo, fh = self.synthesize(x, nets)
        total = torch.zeros((), device=x.device)
        enc = self.networks.get("context")
        if cfg.generates and stage in (None, 1) and cfg.synthesis_loss != "none":
            lg = synthesis_loss(cfg.synthesis_loss, pseudo, real, a, encoder=enc, gamma=cfg.gamma,
                                reduction=cfg.reduction)
            total = total + cfg.alpha * lg
            logs["loss_g"] = float(lg.detach())
        if fh is not None and stage in (None, 0) and cfg.beta > 0:
            kind = cfg.synthesis_loss if cfg.synthesis_loss != "none" else "l2"
            le = synthesis_loss(kind, fh, real, a, encoder=enc, gamma=cfg.gamma, reduction=cfg.reduction)
            total = total + cfg.beta * le
            logs["loss_e"] = float(le.detach())
        if cfg.gan_weight > 0 and stage in (None, 1):
            cond = self._gen_condition(x)
            with rt.autocast():
                fake_l = self._d_logits(rt, cond, pseudo.detach())
                real_l = self._d_logits(rt, cond, real)
            loss_d = 0.5 * self.adversarial.d([r.float() for r in real_l], [f.float() for f in fake_l])
            rt.step(loss_d, "discriminator")
            with rt.autocast():
                adv = self.adversarial.g([g.float() for g in self._d_logits(rt, cond, pseudo)])
            total = total + cfg.gan_weight * adv
            logs["loss_d"], logs["loss_gan"] = float(loss_d.detach()), float(adv.detach())
        if cfg.segments and stage in (None, 2):
            seg_in = self.segmenter_input(x, pseudo.detach() if stage == 2 else pseudo)
            with rt.autocast():
                logits = nets["segmenter"](seg_in)
            ls = self.seg_loss(logits.float(), y)
            total = total + ls
            logs["loss_s"] = float(ls.detach())
        if total.requires_grad:
            rt.step(total, "main")
        logs["loss"] = float(total.detach())
        return logs

    @torch.no_grad()
    def predict(self, dataset: SliceDataset, case_index: int, *, device: str = "cpu", amp: str = "none"
                ) -> tuple[Volume | None, Volume | None]:
        """(pseudo-DWI, lesion probability) of one case as Volumes on its grid (None where the mode has none)."""
        for n in self.networks.values():
            n.eval()
        cfg = self.config

        def forward(x: torch.Tensor) -> torch.Tensor:
            with autocast(device, amp):
                pseudo, _ = self.synthesize(x)
                outs = [pseudo.float()] if pseudo is not None else []
                if cfg.segments:
                    logits = self.networks["segmenter"](self.segmenter_input(x, pseudo))
                    outs.append(logits.float().softmax(1)[:, 1:2])
            return torch.cat(outs, 1)

        out = case_outputs(forward, dataset, case_index, device=device)
        k = 0
        pseudo = prob = None
        if cfg.generates:
            pseudo = dataset.assemble(case_index, out[:, :1])
            k = 1
        if cfg.segments:
            prob = dataset.assemble(case_index, out[:, k:k + 1])
        return pseudo, prob

    def validate(self, dataset: SliceDataset, rt: Runtime) -> dict[str, float]:
        cfg = self.config
        lesion_dice, fp_ml, l1, gen_c, real_c, ssim_l = [], [], [], [], [], []
        for i, case in enumerate(dataset.cases):
            pseudo, prob = self.predict(dataset, i, device=rt.device, amp=rt.amp)
            ref = case[cfg.data.label].array > 0 if cfg.data.label in case else None
            if prob is not None and ref is not None:
                pred = prob.array > cfg.threshold
                if ref.any():
                    lesion_dice.append(dice(pred, ref))
                else:
                    fp_ml.append(float(pred.sum()) * float(np.prod(case.spacing)) / 1000.0)
            if pseudo is not None and dataset.modalities[-1] == cfg.target:
                target = dataset.native_channel(i, cfg.target)
                q = image_quality(pseudo.array, target, brain_mask(case), ref if ref is not None and ref.any() else None)
                l1.append(q["mae_brain"])
                if ref is not None and ref.any():
                    gen_c.append(q["contrast_generated"])
                    real_c.append(q["contrast_real"])
                    ssim_l.append(q["ssim_lesion"])
        nan = float("nan")

        def mean(v: list[float]) -> float:
            return float(np.nanmean(v)) if v and not np.all(np.isnan(v)) else nan

        out = {"val_mae": mean(l1), "val_contrast_generated": mean(gen_c), "val_contrast_real": mean(real_c),
               "val_ssim_lesion": mean(ssim_l)}
        if cfg.segments:
            # ``subsequent``: before Φs's own stage the segmenter is its random init, whose
            # lesion-everywhere output scores a Dice of about the lesion's share and would win the
            # selection over a trained Φs; those epochs report no Dice and cannot be kept
            untrained = cfg.mode == "subsequent" and self.stage != 2
            out.update(val_dice=nan if untrained else mean(lesion_dice), val_fp_ml=nan if untrained else mean(fp_ml))
        return out


@dataclass
class _PatchCfg:
    """A 70x70 PatchGAN of 32 filters with instance norm (Table 1's multi-scale LSGAN)."""

    ndf: int = 32
    n_layers: int = 3
    norm: str = "instance"


def load_pseudo_dwi(path: str | Path) -> PseudoDwi:
    """The trained system of a checkpoint (``best.pt`` / ``last.pt``)."""
    from strokesynth.engine.checkpoint import load_system

    system = load_system(path)
    if not isinstance(system, PseudoDwi):
        raise ConfigError(str(path), f"holds a {system.name} system, not pseudo_dwi")
    return system
