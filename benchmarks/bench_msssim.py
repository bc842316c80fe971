"""Masked MS-SSIM time against pytorch-msssim and MONAI in the same run (no mask: the same value).

A batch of 32 slices at 192x192 (5 scales, so the libraries accept it): strokesynth's
``masked_ms_ssim`` without and with a lesion mask, against pytorch-msssim's ``ms_ssim`` and
MONAI's ``MultiScaleSSIMMetric`` on the same images; the largest difference to each library's
value is printed beside its time. Also the 64 and 128 px slices the recipe scores (3 and 4
scales), which the libraries refuse. Run: ``python benchmarks/bench_msssim.py``.
"""

from __future__ import annotations

import torch
from monai.metrics import MultiScaleSSIMMetric
from pytorch_msssim import ms_ssim

from strokesynth.metrics.msssim import masked_ms_ssim

from _common import best_of, report


def main() -> None:
    torch.manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(32, 1, 192, 192, dtype=torch.float64), 5, 1, 2)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    mask = torch.ones_like(x)
    mask[..., 80:110, 60:100] = 0
    ours = masked_ms_ssim(x, y)[0]
    pm = ms_ssim(x, y, data_range=1.0, size_average=False).double()
    monai = MultiScaleSSIMMetric(spatial_dims=2, data_range=1.0, kernel_size=11, kernel_sigma=1.5)
    mo = monai(y, x).flatten().double()
    t_ours = best_of(lambda: masked_ms_ssim(x, y))
    t_masked = best_of(lambda: masked_ms_ssim(x, y, mask))
    t_pm = best_of(lambda: ms_ssim(x, y, data_range=1.0, size_average=False))
    t_mo = best_of(lambda: monai(y, x))
    rows = [
        {"impl": "strokesynth masked_ms_ssim, no mask", "px": 192, "scales": 5, "seconds": round(t_ours, 4)},
        {"impl": "strokesynth masked_ms_ssim, lesion mask", "px": 192, "scales": 5, "seconds": round(t_masked, 4),
         "ratio_vs_pytorch_msssim": round(t_pm / t_masked, 2)},
        {"impl": "pytorch-msssim ms_ssim", "px": 192, "scales": 5, "seconds": round(t_pm, 4),
         "ratio_vs_pytorch_msssim": 1.0, "max_abs_diff_to_ours": float((ours - pm).abs().max())},
        {"impl": "MONAI MultiScaleSSIMMetric", "px": 192, "scales": 5, "seconds": round(t_mo, 4),
         "ratio_vs_pytorch_msssim": round(t_pm / t_mo, 2), "max_abs_diff_to_ours": float((ours - mo).abs().max())},
    ]
    rows[0]["ratio_vs_pytorch_msssim"] = round(t_pm / t_ours, 2)
    for side in (64, 128):
        a, b = x[..., :side, :side], y[..., :side, :side]
        rows.append({"impl": "strokesynth masked_ms_ssim (libraries refuse this size)", "px": side,
                     "scales": masked_ms_ssim(a, b)[1], "seconds": round(best_of(lambda a=a, b=b: masked_ms_ssim(a, b)), 4)})
    report("msssim", rows, note="32 slices, float64; ratio = pytorch-msssim time / this time (above 1: faster)")


if __name__ == "__main__":
    main()
