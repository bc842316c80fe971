"""Label-map augmentation speed on CPU: lesion-GAN samples per second on the paper's 128x128x32 grid,
translation-model slices per second at 128 px (Pix2Pix U-Net, SPADE, CycleGAN ResNet), fp32 and
bf16 autocast, each as a fraction of a large matrix multiply of the same dtype measured in the same
run; the 3D U-Net (Platscher's appendix, 5.65 M) forward against MONAI's ``BasicUNet`` of the same
shape (5.66 M); and the synthetic-database throughput (subjects per minute, resident-memory
growth over the run) with tiny-size models, to show memory does not grow with N.
Run: ``python benchmarks/bench_labelmap.py [--quick] [--n 1000] [--db-only]``.
"""

# ruff: noqa: B023
from __future__ import annotations

import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench_cgan import matmul_gflops
from strokesynth.engine.system import autocast
from strokesynth.nets.lesion_gan import LesionGenerator
from strokesynth.nets.registry import NETWORKS
from strokesynth.systems.labelmap import TranslationConfig, build_translation

from _common import mean_time, report

#: reference matmul sides: 1024 for bf16, since on CPUs without bf16 matrix units a 4096^2 bf16
#: product takes minutes
MATMUL_N = {"none": 2048, "bf16": 1024}


def _flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def network_rows(repeats: int, peak: dict[str, float]) -> list[dict]:
    rows = []
    g = LesionGenerator((128, 128, 32)).eval()
    z = torch.randn(2, 128)
    nets = [("lesion GAN generator 128x128x32", lambda: g(z), 2)]
    for model in ("pix2pix", "spade", "cyclegan"):
        system = build_translation(TranslationConfig(model=model))
        gen = system.networks["generator"].eval()
        x = torch.zeros(2, 12, 128, 128)
        x[:, 0] = 1
        nets.append((f"{model} generator, 128 px slice", lambda gen=gen, x=x: gen(x), 2))
    for name, fn, per in nets:
        for amp in ("none", "bf16"):
            def run() -> None:
                with torch.no_grad(), autocast("cpu", amp):
                    fn()
            flops = _flops(run) / per
            sec = mean_time(run, repeats) / per
            rows.append({"what": name, "amp": amp, "per_second": round(1 / sec, 2), "GFLOP": round(flops / 1e9, 2),
                         "x_of_matmul": round(flops / sec / 1e9 / peak[amp], 3)})
    return rows


def unet_rows(repeats: int) -> list[dict]:
    from types import SimpleNamespace

    from monai.networks.nets import BasicUNet

    cfg = SimpleNamespace(channels=[16, 32, 64, 128, 256], strides=[[2, 2, 2]] * 4, norm="batch", num_classes=2,
                          dropout=0.02)
    ours = NETWORKS.build("unet3d", cfg, 1).eval()
    # the same shape: two 3x3x3 conv + BN + ReLU + dropout per level, max-pool down, transposed conv up
    monai = BasicUNet(3, 1, 2, features=(16, 32, 64, 128, 256, 16), act="relu", norm="batch", dropout=0.02).eval()
    x = torch.randn(1, 1, 128, 128, 32)
    out = []
    for name, net in (("3D U-Net (Platscher, ours)", ours), ("reference: MONAI BasicUNet 16-32-64-128-256", monai)):
        def run(net=net) -> None:
            with torch.no_grad():
                net(x)
        out.append({"what": name, "amp": "none", "per_second": round(1 / mean_time(run, repeats), 2),
                    "parameters": sum(p.numel() for p in net.parameters())})
    out[0]["x_of_reference"] = round(out[0]["per_second"] / out[1]["per_second"], 3)
    return out


def db_rows(n: int) -> list[dict]:
    """Synthetic-database throughput with tiny-size models on a 64x64x16 grid."""
    from strokesynth.data.case import Case
    from strokesynth.data.volume import Volume
    from strokesynth.engine.checkpoint import save_checkpoint
    from strokesynth.engine.loop import network_payload
    from strokesynth.recipes.synthetic_db import build_synthetic_db
    from strokesynth.systems.lesion_gan import LesionGANConfig, LesionWGAN

    tmp = Path(tempfile.mkdtemp())
    tcfg = TranslationConfig(size=64, ngf=16, num_downs=6)
    tr = build_translation(tcfg)
    gcfg = LesionGANConfig(shape=[64, 64, 16], generator_channels=[64, 32, 16, 8], critic_channels=[8, 16, 32, 64])
    gan = LesionWGAN(gcfg)
    gan.generator.empty_bias = 0.5
    gan.generator.reset_output()
    for path, system in ((tmp / "tr.pt", tr), (tmp / "gan.pt", gan)):
        save_checkpoint(path, network_payload(system, 0))
    aff = np.diag([3.0, 3.0, 10.0, 1.0])
    lab = np.zeros((64, 64, 16), np.uint8)
    lab[8:56, 8:56, 2:14] = 1
    lab[12:52, 12:32, 3:13] = 3
    lab[12:52, 32:52, 3:13] = 4
    lab[20:44, 16:30, 5:11] = 5
    lab[20:44, 34:48, 5:11] = 6
    healthy = [Case(f"h{i}", f"h{i}", {"anatomy": Volume(np.roll(lab, i, 0), aff, kind="label")}) for i in range(8)]
    rss0 = _rss_mb()
    t = time.perf_counter()
    build_synthetic_db(healthy, tmp / "gan.pt", tmp / "tr.pt", n, tmp / "db", echo=lambda s: None)
    sec = time.perf_counter() - t
    peak = _rss_mb()
    # reference: writing the same four volumes per subject with nibabel alone (the I/O floor)
    import nibabel as nib

    m = min(n, 50)
    vols = {"dwi": np.random.default_rng(0).random((64, 64, 16), dtype=np.float32), "lesion": (lab == 3).astype(np.uint8),
            "anatomy": lab, "brain": (lab > 0).astype(np.uint8)}
    t = time.perf_counter()
    for i in range(m):
        (tmp / "ref" / str(i)).mkdir(parents=True)
        for k, a in vols.items():
            nib.save(nib.Nifti1Image(a, aff), str(tmp / "ref" / str(i) / f"{k}.nii.gz"))
    ref = m / (time.perf_counter() - t)
    shutil.rmtree(tmp, ignore_errors=True)
    return [{"what": f"synthetic database, N={n}, 64x64x16, tiny models", "amp": "none",
             "per_second": round(n / sec, 2), "subjects_per_minute": round(60 * n / sec, 1),
             "x_of_reference": round(n / sec / ref, 3), "peak_rss_growth_mb": round(peak - rss0, 1),
             "peak_rss_mb": round(peak, 1)},
            {"what": "reference: nibabel writes of the same 4 volumes per subject", "amp": "none",
             "per_second": round(ref, 2), "subjects_per_minute": round(60 * ref, 1)}]


def main() -> None:
    quick = "--quick" in sys.argv
    n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else (20 if quick else 200)
    repeats = 1 if quick else 3
    torch.manual_seed(0)
    if "--db-only" in sys.argv:  # the database part alone (e.g. --n 1000 after a --quick run of the rest)
        report("bench_labelmap_db", db_rows(n), note="subjects per minute and peak resident memory of synth-db")
        return
    peak = {a: matmul_gflops(dtype, n=MATMUL_N[a]) for a, dtype in (("none", torch.float32), ("bf16", torch.bfloat16))}
    rows = network_rows(repeats, peak) + unet_rows(repeats) + db_rows(n)
    rows += [{"what": f"reference: {MATMUL_N[a]}^2 matmul", "amp": a, "GFLOP": None, "x_of_matmul": 1.0,
              "per_second": round(peak[a], 1)} for a in ("none", "bf16")]
    report("bench_labelmap", rows, note=f"{torch.get_num_threads()} threads; per_second: samples (GAN, batch 2), slices "
                                        "(translation, batch 2), volumes (U-Net), subjects (database); x_of_matmul: "
                                        "achieved GFLOP/s over the matrix multiply of the same dtype measured in this run "
                                        "(matmul row: its GFLOP/s)")


if __name__ == "__main__":
    main()
