"""A toy third system for the fold-loop tests: an autoencoder with a critic (two networks, two
optimisers, an adversarial term), written only as networks + train_step + validate.

Run as a script under torchrun it trains into the folder given as its first argument.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from strokesynth.engine.config import OptimConfig, RunConfig, make_optimizer
from strokesynth.engine.loop import fit
from strokesynth.engine.system import SYSTEMS, Dist, Runtime, System
from strokesynth.losses.adversarial import Adversarial
from strokesynth.nets.blocks import conv, conv_transpose, norm


@dataclass
class ToyConfig:
    width: int = 8
    adv_weight: float = 0.05
    dropout: float = 0.2
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-2, schedule="cosine"))


class Blobs(Dataset):
    """``n`` 1x16x16 images of a bright disc at a random place (fixed by ``seed``)."""

    def __init__(self, n: int = 24, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
        c = torch.rand(n, 2, generator=g) * 10 + 3
        self.x = ((yy - c[:, 0, None, None]) ** 2 + (xx - c[:, 1, None, None]) ** 2 < 9).float()[:, None]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.x[i]}


@SYSTEMS.register("toy_autoencoder_critic")
class AutoencoderCritic(System):
    name = "toy_autoencoder_critic"
    config_class = ToyConfig
    monitor = "val_l1"
    monitor_mode = "min"

    def __init__(self, cfg: ToyConfig) -> None:
        super().__init__()
        self.config = cfg
        w = cfg.width
        ae = nn.Sequential(conv(2)(1, w, 3, stride=2, padding=1), norm("group", 2, w), nn.ReLU(), nn.Dropout(cfg.dropout),
                           conv_transpose(2)(w, 1, 2, stride=2), nn.Sigmoid())
        critic = nn.Sequential(conv(2)(1, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2), conv(2)(w, 1, 3, padding=1))
        self.networks = {"ae": ae, "critic": critic}
        self.optimizers = {k: make_optimizer(cfg.optim, n.parameters()) for k, n in self.networks.items()}
        self.optim_configs = {k: cfg.optim for k in self.networks}
        self.adv = Adversarial("lsgan")

    def train_step(self, batch: dict, rt: Runtime) -> dict[str, float]:
        x = batch["image"].to(rt.device)
        with rt.autocast():
            y = rt.net("ae")(x)
        rt.requires_grad("critic", True)
        with rt.autocast():
            real, fake = rt.net("critic")(torch.cat([x, y.detach()])).float().chunk(2)
        loss_c = self.adv.d(real, fake)
        rt.step(loss_c, "critic")
        rt.requires_grad("critic", False)
        with rt.autocast():
            adv = self.adv.g(rt.net("critic")(y).float())
        l1 = F.l1_loss(y.float(), x)
        rt.step(l1 + self.config.adv_weight * adv, "ae")
        return {"l1": float(l1.detach()), "critic": float(loss_c.detach())}

    def validate(self, dataset: Dataset, rt: Runtime) -> dict[str, float]:
        x = torch.stack([dataset[i]["image"] for i in range(len(dataset))]).to(rt.device)
        return {"val_l1": float(F.l1_loss(self.networks["ae"](x), x))}


def train(folder: str, epochs: int = 4, amp: str = "none", dist: Dist | None = None) -> dict:
    run = RunConfig(epochs=epochs, batch_size=4, steps_per_epoch=6, seed=5, amp=amp, threads=1)
    return fit(lambda: AutoencoderCritic(ToyConfig()), Blobs(24, 0), Blobs(8, 1), folder, run, dist=dist)


if __name__ == "__main__":  # under torchrun: python -m torch.distributed.run --nproc_per_node 2 toy_system.py DIR
    d = Dist.from_env("cpu")
    result = train(sys.argv[1], dist=d)
    d.close()
