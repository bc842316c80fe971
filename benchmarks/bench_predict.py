"""Raw 4D CTP -> core mask for one new patient: seconds per stage, and the whole `predict` path.

One phantom scan the size of an ISLES 2018 slab (256x256x8, 48 frames at 1.25 s; CT and raw CTP
only, written in the plain layout) goes through ``predict_cases`` as the CLI runs it: reading,
perfusion maps (oSVD), the network, writing the masks, Tmax > 6 s, the overlay and the case page.
The segmenters are the shipped PSPNet configs with untrained weights (speed does not depend on
them); with onnx installed the same networks exported and run by ONNX Runtime are timed too
(ratio = ONNX Runtime network time / PyTorch's). Reference timed in the same run: a vectorised sSVD of the same curves (one truncated
pseudo-inverse and one matrix product), the floor of any SVD deconvolution.

    python benchmarks/bench_predict.py [--size 256] [--repeats 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import torch

from strokesynth.apps.export import export_model, load_exported
from strokesynth.apps.predict import _probability, predict_cases
from strokesynth.config import load_config
from strokesynth.engine.checkpoint import save_checkpoint
from strokesynth.engine.loop import network_payload
from strokesynth.io import open_cohort, write_cohort
from strokesynth.perfusion.case_maps import with_perfusion_maps
from strokesynth.perfusion.maps import analyze_ctp
from strokesynth.phantom import PhantomConfig
from strokesynth.phantom.cohort import subject_scans
from strokesynth.report.case import write_case_page
from strokesynth.systems.segmenter import Segmenter, TrainConfig, build_model

from _common import best_of, machine, report, vectorised_ssvd

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript", "onnxruntime"))
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "seg"


def network_seconds(model, tc, case, repeats: int) -> float:
    """Best-of time of the segmenter alone on one prepared case (maps given), s."""
    def run() -> None:
        with torch.inference_mode():
            _probability(model, tc, case)
    return best_of(run, repeats)


def predict_seconds(models, data: Path, folder: Path, repeats: int) -> float:
    """Best-of time of the whole ``predict`` (raw CTP -> maps -> mask -> page), a new output folder per run, s."""
    runs = iter(range(repeats))
    return best_of(lambda: predict_cases(models, data, folder / str(next(runs)), case_page=write_case_page,
                                         echo=lambda s: None), repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = PhantomConfig(subjects=1, seed=3)
    cfg.grid.spacing_mm *= cfg.grid.size / args.size
    cfg.grid.size = args.size
    cfg.grid.slices = [8]
    cfg.grid.two_slab_prob = 0.0
    scan = subject_scans(cfg, 0, False, 1)[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = write_cohort([scan.case.select(["ct", "ctp"])], Path(tmp) / "data", layout="plain")
        case = open_cohort(data).cases[0]
        ctp = case["ctp"].array.astype(np.float32)

        # the reference: one SVD deconvolution of every brain curve with the AIF the analysis chose
        analysis = analyze_ctp(case["ctp"])  # once, for the brain mask and the AIF the reference uses
        brain = analysis.mask.array > 0
        base = ctp[..., : analysis.info["baseline_frames"]].mean(-1)
        curves = (ctp - base[..., None])[brain].astype(np.float64)
        aif = analysis.aif.curve.astype(np.float64)
        ref = best_of(lambda: vectorised_ssvd(curves, aif, case["ctp"].dt), args.repeats)
        maps_s = best_of(lambda: with_perfusion_maps(open_cohort(data).cases[0]), args.repeats)
        rows.append({"stage": "perfusion maps (oSVD, whole analysis)", "seconds": round(maps_s, 2),
                     "reference": "vectorised sSVD", "reference_s": round(ref, 3), "ratio": round(maps_s / ref, 1)})

        for name in ("pspnet_focal_tiny", "pspnet_focal"):
            tc = load_config(TrainConfig, CONFIGS / f"{name}.yaml")
            tc.data.dataset = str(data)
            tc.data.size = (args.size, args.size)
            torch.manual_seed(0)
            model = build_model(tc.model, len(tc.data.modalities), pretrained=False).eval()
            with_maps, _ = with_perfusion_maps(case)
            net = network_seconds(model, tc, with_maps, args.repeats)
            total = predict_seconds([(model, tc)], data, Path(tmp) / f"pred_{name}", args.repeats)
            rows.append({"stage": f"whole predict, raw CTP -> mask + page ({name}, untrained)",
                         "seconds": round(total, 2), "network_s": round(net, 2),
                         "rest_s": round(total - maps_s - net, 2),
                         "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2)})
            if HAS_ONNX:  # the same model exported, run by ONNX Runtime
                system = Segmenter(tc, pretrained=False)
                system.model.load_state_dict(model.state_dict())
                ckpt = save_checkpoint(Path(tmp) / f"{name}.pt", network_payload(system, 0))
                export_model(ckpt, Path(tmp) / f"onnx_{name}", formats=("onnx",), echo=lambda s: None)
                loaded = load_exported(Path(tmp) / f"onnx_{name}")
                loaded[1].run.device, loaded[1].run.amp = "cpu", "none"
                onnx_net = network_seconds(*loaded, with_maps, args.repeats)
                onnx_total = predict_seconds([loaded], data, Path(tmp) / f"pred_onnx_{name}", args.repeats)
                rows.append({"stage": f"whole predict, --engine onnxruntime ({name})", "seconds": round(onnx_total, 2),
                             "network_s": round(onnx_net, 2), "reference": "torch network_s",
                             "reference_s": round(net, 2), "ratio": round(onnx_net / net, 2)})
    shape = f"{args.size}x{args.size}x8x48"
    report("predict", rows, note=f"one phantom scan {shape} (CT + raw CTP, plain layout), {args.threads} threads, "
                                 f"best of {args.repeats}; network_s: the segmenter alone; rest_s: reading, writing the "
                                 f"NIfTIs, the overlay PNG and the page; cpu: {machine()['cpu']}")


if __name__ == "__main__":
    main()
