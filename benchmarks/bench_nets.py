"""Segmenter speed on CPU: training step (batch 2) and inference per 256x256 slice (batch 8),
fp32 and bf16 autocast, for PSPNet-R50 (5 inputs) and the U-Net, against MONAI's UNet of the
same widths (32-512, batch norm, ReLU) measured in the same run.
Run: ``python benchmarks/bench_nets.py``.
"""

from __future__ import annotations

import time

import torch
from monai.networks.nets import UNet as MonaiUNet

from strokesynth.losses import make_loss
from strokesynth.nets import PSPNet, UNet, count_parameters

from _common import report


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def main() -> None:
    torch.manual_seed(0)
    nets = {
        "PSPNet-R50": PSPNet(5, 2, 50),
        "strokesynth U-Net 32-512": UNet(2, 5, 2, (32, 64, 128, 256, 512)),
        "MONAI UNet 32-512": MonaiUNet(2, 5, 2, (32, 64, 128, 256, 512), (2, 2, 2, 2), num_res_units=0,
                                       norm="BATCH", act="RELU"),
    }
    loss_fn = make_loss("focal")
    rows = []
    for name, net in nets.items():
        for amp in ("fp32", "bf16"):
            x_inf = torch.randn(8, 5, 256, 256)
            net.eval()

            def infer():
                with torch.no_grad(), (torch.autocast("cpu", dtype=torch.bfloat16) if amp == "bf16"
                                       else torch.autocast("cpu", enabled=False)):
                    net(x_inf)

            t_inf = _time(infer, 2) / 8
            net.train()
            x, y = torch.randn(2, 5, 256, 256), (torch.rand(2, 1, 256, 256) > 0.95).long()
            opt = torch.optim.RMSprop(net.parameters(), lr=1e-4)

            def step():
                with (torch.autocast("cpu", dtype=torch.bfloat16) if amp == "bf16"
                      else torch.autocast("cpu", enabled=False)):
                    out = net(x)
                out = out[0] if isinstance(out, tuple) else out
                loss = loss_fn(out.float(), y)
                opt.zero_grad()
                loss.backward()
                opt.step()

            t_step = _time(step, 2)
            rows.append({"network": name, "precision": amp, "params_M": round(count_parameters(net) / 1e6, 2),
                         "train_step_s (batch 2)": round(t_step, 3), "infer_s_per_slice": round(t_inf, 4)})
    ours = {r["precision"]: r for r in rows if r["network"].startswith("strokesynth")}
    for r in rows:
        if r["network"].startswith("MONAI"):
            o = ours[r["precision"]]
            o["step_ratio_vs_monai"] = round(o["train_step_s (batch 2)"] / r["train_step_s (batch 2)"], 2)
            o["infer_ratio_vs_monai"] = round(o["infer_s_per_slice"] / r["infer_s_per_slice"], 2)
    report("nets", rows, note="CPU, 256x256, 5 input channels; ratio < 1: strokesynth faster than MONAI")


if __name__ == "__main__":
    main()
