"""Segmenter speed on CPU: training step (batch 2) and inference per 256x256 slice (batch 8),
fp32 and bf16 autocast, for PSPNet-R50 (5 inputs) and the U-Net, against MONAI's ``BasicUNet``
of the same shape (double convs, max-pooling, widths 32-512) measured in the same run. MONAI's
``UNet`` (one strided conv per level, so it never convolves at full resolution with 32
channels) is listed too for information; it is not the same shape.
bf16 rows are measured only on CPUs with bf16 matrix units (AMX) unless ``--bf16 on``: without
them bf16 is emulated (one PSPNet-R50 slice took 207 s against 0.82 s in fp32 on an AMD EPYC
without AVX-512) and the run would take hours.
Run: ``python benchmarks/bench_nets.py [--bf16 auto|on|off]``.
"""

from __future__ import annotations

import argparse

import torch
from monai.networks.nets import BasicUNet
from monai.networks.nets import UNet as MonaiUNet

from strokesynth.engine.config import cpu_has_bf16_matrix_units
from strokesynth.engine.system import autocast
from strokesynth.losses import make_loss
from strokesynth.nets import PSPNet, UNet, count_parameters

from _common import mean_time, report


def inference_seconds(net: torch.nn.Module, amp: str) -> float:
    """Seconds per slice, batch of 8."""
    x = torch.randn(8, 5, 256, 256)
    net.eval()

    def run() -> None:
        with torch.no_grad(), autocast("cpu", amp):
            net(x)

    return mean_time(run, 2) / 8


def step_seconds(net: torch.nn.Module, amp: str) -> float:
    """Seconds per optimiser step (RMSprop, focal loss), batch of 2."""
    x, y = torch.randn(2, 5, 256, 256), (torch.rand(2, 1, 256, 256) > 0.95).long()
    net.train()
    opt = torch.optim.RMSprop(net.parameters(), lr=1e-4)
    loss_fn = make_loss("focal")

    def run() -> None:
        with autocast("cpu", amp):
            out = net(x)
        out = out[0] if isinstance(out, tuple) else out
        loss = loss_fn(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return mean_time(run, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bf16", choices=["auto", "on", "off"], default="auto")
    args = ap.parse_args()
    bf16 = args.bf16 == "on" or (args.bf16 == "auto" and cpu_has_bf16_matrix_units())
    torch.manual_seed(0)
    nets = {
        "PSPNet-R50": PSPNet(5, 2, 50),
        "strokesynth U-Net 32-512": UNet(2, 5, 2, (32, 64, 128, 256, 512)),
        "MONAI BasicUNet 32-512": BasicUNet(2, 5, 2, features=(32, 64, 128, 256, 512, 32)),
        "MONAI UNet 32-512 (strided, other shape)": MonaiUNet(2, 5, 2, (32, 64, 128, 256, 512), (2, 2, 2, 2), num_res_units=0,
                                       norm="BATCH", act="RELU"),
    }
    rows = []
    for name, net in nets.items():
        for amp in ("none", "bf16") if bf16 else ("none",):
            rows.append({"network": name, "precision": "fp32" if amp == "none" else amp,
                         "params_M": round(count_parameters(net) / 1e6, 2),
                         "train_step_s_batch2": round(step_seconds(net, amp), 3),
                         "infer_s_per_slice": round(inference_seconds(net, amp), 4)})
    if not bf16:
        print("bf16 rows skipped: this CPU has no bf16 matrix units (--bf16 on to measure them anyway)")
    ours = {r["precision"]: r for r in rows if r["network"].startswith("strokesynth")}
    for r in rows:
        if r["network"].startswith("MONAI BasicUNet"):
            o = ours[r["precision"]]
            o["step_ratio_vs_monai"] = round(o["train_step_s_batch2"] / r["train_step_s_batch2"], 2)
            o["infer_ratio_vs_monai"] = round(o["infer_s_per_slice"] / r["infer_s_per_slice"], 2)
    report("nets", rows, note="CPU, 256x256, 5 input channels; ratio = strokesynth U-Net time / MONAI BasicUNet time")


if __name__ == "__main__":
    main()
