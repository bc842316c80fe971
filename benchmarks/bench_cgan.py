"""CT-to-MR cGAN speed on CPU, paper size (ResNet-9 generator ngf 64, 70x70 PatchGAN ndf 64, 256x256,
batch 1): discriminator step, generator step and generator inference per slice, fp32 and bf16
autocast, channels-last off and on. Achieved GFLOP/s (FLOPs from PyTorch's FlopCounterMode,
forward and backward) are compared with a large matrix multiply of the same dtype measured in
the same run, the machine's practical limit.
bf16 rows are timed only on CPUs with bf16 matrix units (AMX) unless ``--bf16``: elsewhere bf16 is
emulated and these rows alone run for hours (a PSPNet-R50 slice: 207 s bf16 against 0.82 s fp32 on
an AMD EPYC without AVX-512).
Run: ``python benchmarks/bench_cgan.py [--quick] [--bf16]``.
"""

# ruff: noqa: B023  (the step closures are timed within the loop iteration that defines them)
from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from strokesynth.engine.config import cpu_has_bf16_matrix_units
from strokesynth.engine.system import autocast
from strokesynth.losses.adversarial import discriminator_loss, generator_loss
from strokesynth.nets.blocks import init_weights
from strokesynth.nets.registry import NETWORKS
from strokesynth.systems.pix2pix import DiscriminatorConfig, GeneratorConfig

from _common import mean_time, report


def _flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def matmul_gflops(dtype: torch.dtype, n: int = 4096, repeats: int = 5) -> float:
    """GFLOP/s of an n x n @ n x n matrix multiply in ``dtype``."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    sec = mean_time(lambda: a @ b, repeats)
    return 2 * n ** 3 / sec / 1e9


def cases(size: int, repeats: int, amps: tuple[str, ...] = ("none", "bf16")):
    g = init_weights(NETWORKS.build("resnet_generator", GeneratorConfig(), 5))
    d = init_weights(NETWORKS.build("patchgan", DiscriminatorConfig(), 6))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rows = []
    for amp in amps:
        for cl in (False, True):
            fmt = torch.channels_last if cl else torch.contiguous_format
            g.to(memory_format=fmt)
            d.to(memory_format=fmt)
            x = torch.randn(1, 5, size, size).to(memory_format=fmt)
            y = torch.rand(1, 1, size, size).to(memory_format=fmt) * 2 - 1
            with torch.no_grad():
                fake = g(x)

            def d_step() -> None:
                opt_d.zero_grad(set_to_none=True)
                with autocast("cpu", amp):
                    loss = 0.5 * discriminator_loss(d(torch.cat([x, y], 1)).float(), d(torch.cat([x, fake], 1)).float())
                loss.backward()
                opt_d.step()

            def g_step() -> None:
                opt_g.zero_grad(set_to_none=True)
                with autocast("cpu", amp):
                    out = g(x)
                    adv = generator_loss(d(torch.cat([x, out], 1)).float())
                (adv + 100 * F.l1_loss(out.float(), y)).backward()
                opt_g.step()

            xb = torch.randn(4, 5, size, size).to(memory_format=fmt)

            def g_infer() -> None:
                with torch.no_grad(), autocast("cpu", amp):
                    g(xb)

            g.train()
            d.train()
            for name, fn, per in (("D step", d_step, 1), ("G step (through D)", g_step, 1),
                                  ("G inference", g_infer, 4)):
                if name == "G inference":
                    g.eval()
                flops = _flops(fn) / per
                sec = mean_time(fn, repeats) / per
                rows.append({"what": name, "amp": amp, "channels_last": cl, "s_per_slice": round(sec, 4),
                             "GFLOP": round(flops / 1e9, 1), "GFLOP/s": round(flops / sec / 1e9, 1)})
            g.train()
    return rows


def main() -> None:
    quick = "--quick" in sys.argv
    size, repeats = (128, 1) if quick else (256, 2)
    torch.manual_seed(0)
    amps = ("none", "bf16") if "--bf16" in sys.argv or cpu_has_bf16_matrix_units() else ("none",)
    peak = {"none": matmul_gflops(torch.float32)}
    if "bf16" in amps:
        peak["bf16"] = matmul_gflops(torch.bfloat16)
    rows = cases(size, repeats, amps)
    for r in rows:
        r["x_of_matmul"] = round(r["GFLOP/s"] / peak[r["amp"]], 3)
    rows += [{"what": "reference: 4096^2 matmul", "amp": a, "GFLOP/s": round(p, 1), "x_of_matmul": 1.0}
             for a, p in peak.items()]
    skipped = "" if "bf16" in amps else "; bf16 rows skipped: no bf16 matrix units on this CPU (--bf16 to time them)"
    report("bench_cgan", rows, note=f"{size}x{size}, batch 1 (inference: batch 4, per slice), "
                                    f"{torch.get_num_threads()} threads; x_of_matmul = achieved GFLOP/s over the "
                                    f"matrix multiply of the same dtype measured in this run{skipped}")


if __name__ == "__main__":
    main()
