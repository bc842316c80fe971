"""Pseudo-DWI system speed on CPU, per 256x256 slice: Φe + Φg + Φs inference at the paper's sizes
(U-Nets of 64..1024, SLNet 33.84 M), fp32 and bf16 autocast, against MONAI's ``BasicUNet`` of the
same width (64..1024, batch norm) measured in the same run; and the switchable-norm layer against
``nn.BatchNorm2d`` (training forward + backward, and eval forward), as ratios.
Run: ``python benchmarks/bench_pseudo_dwi.py [--quick]`` (quick: 128x128, fewer repeats).
"""

# ruff: noqa: B023  (closures are timed within the loop iteration that defines them)
from __future__ import annotations

import sys

import torch
from monai.networks.nets import BasicUNet
from torch import nn

from strokesynth.engine.system import autocast
from strokesynth.nets.switchable import SwitchNorm
from strokesynth.systems.pseudo_dwi import PseudoDwi, PseudoDwiConfig

from _common import mean_time, report


def bf16_slowdown() -> float:
    """bf16 over fp32 time of one 64-channel 3x3 convolution on 64x64 (a probe: on CPUs without bf16
    matrix units a bf16 convolution can be 100x slower, measured 170x for the whole pipeline on
    an AMD EPYC without avx512_bf16, so the full bf16 rows are only timed where it pays)."""
    conv = nn.Conv2d(64, 64, 3, padding=1).eval()
    x = torch.rand(1, 64, 64, 64)

    def run(amp: str) -> None:
        with torch.no_grad(), autocast("cpu", amp):
            conv(x)

    return mean_time(lambda: run("bf16"), 2) / mean_time(lambda: run("none"), 2)


def pipeline_rows(size: int, repeats: int, batch: int = 4, amps: tuple[str, ...] = ("none", "bf16")) -> list[dict]:
    cfg = PseudoDwiConfig()  # paper sizes: extractor 32..256, generator 64..1024, SLNet 64..1024
    system = PseudoDwi(cfg)
    for n in system.networks.values():
        n.eval()
    x = torch.rand(batch, system.ch.total, size, size)
    ref = BasicUNet(spatial_dims=2, in_channels=6, out_channels=1, features=(64, 128, 256, 512, 1024, 64),
                    norm="batch").eval()
    xr = torch.rand(batch, 6, size, size)
    rows = []
    for amp in amps:
        def ours() -> None:
            with torch.no_grad(), autocast("cpu", amp):
                pseudo, _ = system.synthesize(x)
                system.networks["segmenter"](system.segmenter_input(x, pseudo))

        def generator_only() -> None:
            with torch.no_grad(), autocast("cpu", amp):
                system.networks["generator"](xr)

        def monai() -> None:
            with torch.no_grad(), autocast("cpu", amp):
                ref(xr)

        t_pipe = mean_time(ours, repeats) / batch
        t_gen = mean_time(generator_only, repeats) / batch
        t_ref = mean_time(monai, repeats) / batch
        rows += [{"what": "Phi_e + Phi_g + Phi_s (SLNet)", "amp": amp, "s_per_slice": round(t_pipe, 4),
                  "x_of_BasicUNet": round(t_pipe / t_ref, 2)},
                 {"what": "Phi_g alone (U-Net 64..1024)", "amp": amp, "s_per_slice": round(t_gen, 4),
                  "x_of_BasicUNet": round(t_gen / t_ref, 2)},
                 {"what": "reference: MONAI BasicUNet 64..1024", "amp": amp, "s_per_slice": round(t_ref, 4),
                  "x_of_BasicUNet": 1.0}]
    return rows


def norm_rows(size: int, repeats: int) -> list[dict]:
    x = torch.randn(4, 64, size, size, requires_grad=True)
    rows = []
    for name, layer in (("SwitchNorm (ours)", SwitchNorm(64)), ("reference: nn.BatchNorm2d", nn.BatchNorm2d(64))):
        layer.train()

        def train_step() -> None:
            layer(x).sum().backward()

        def infer() -> None:
            with torch.no_grad():
                layer(x)

        t_train = mean_time(train_step, repeats)
        layer.eval()
        t_eval = mean_time(infer, repeats)
        rows.append({"what": name, "train_fwd_bwd_s": round(t_train, 4), "eval_fwd_s": round(t_eval, 4)})
    for r in rows:
        r["train_x_of_BN"] = round(r["train_fwd_bwd_s"] / rows[1]["train_fwd_bwd_s"], 2)
        r["eval_x_of_BN"] = round(r["eval_fwd_s"] / rows[1]["eval_fwd_s"], 2)
    return rows


def main() -> None:
    quick = "--quick" in sys.argv
    size, repeats = (128, 1) if quick else (256, 3)
    torch.manual_seed(0)
    slow = bf16_slowdown()
    amps = ("none", "bf16") if slow < 4 or "--bf16" in sys.argv else ("none",)
    rows = pipeline_rows(size, repeats, amps=amps)
    rows.append({"what": "probe: bf16 / fp32 time of one 3x3 conv", "amp": "bf16", "s_per_slice": "",
                 "x_of_BasicUNet": "", "bf16_over_fp32": round(slow, 1)})
    skipped = "" if "bf16" in amps else (f"; bf16 rows skipped: a bf16 convolution is {slow:.0f}x slower than fp32 "
                                         "on this CPU (run with --bf16 to time them anyway)")
    report("bench_pseudo_dwi", rows,
           note=f"{size}x{size}, batch 4, per slice, {torch.get_num_threads()} threads; x_of_BasicUNet = time over "
                "MONAI's BasicUNet of the same width and precision in this run (the pipeline runs three "
                "networks, Phi_g alone is the like-for-like ratio)" + skipped)
    report("bench_switchable_norm", norm_rows(size, repeats),
           note=f"4x64x{size}x{size}; switchable norm computes IN, LN and BN statistics and mixes them")


if __name__ == "__main__":
    main()
