"""Metric time on a 256x256x22 case (0.9x0.9x5 mm) against MedPy in the same run.

strokesynth's ``evaluate_case`` (all metrics, incl. lesion-wise counts) against MedPy's
``dc + hd + assd + precision + recall + ravd`` on the same masks: a 63 ml lesion and a
prediction shifted by two voxels with a false-positive blob.
Run: ``python benchmarks/bench_metrics.py``.
"""

from __future__ import annotations

import numpy as np
from medpy.metric import binary
from scipy import ndimage

from strokesynth.metrics import evaluate_case

from _common import best_of, report


def main() -> None:
    rng = np.random.default_rng(0)
    shape, spacing = (256, 256, 22), (0.9, 0.9, 5.0)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), (8, 8, 1.5))
    ref = np.zeros(shape, bool)
    ref[60:160, 80:180, 4:18] = field[60:160, 80:180, 4:18] > 0.02
    pred = np.roll(ref, 2, axis=0)
    pred[200:210, 30:40, 10:12] = True
    ours = evaluate_case(pred, ref, spacing)
    ref_vals = {"dice": binary.dc(pred, ref), "hd": binary.hd(pred, ref, spacing),
                "hd95": binary.hd95(pred, ref, spacing), "assd": binary.assd(pred, ref, spacing)}
    diff = max(abs(ours[k] - v) for k, v in ref_vals.items())
    t_ours = best_of(lambda: evaluate_case(pred, ref, spacing))

    def medpy_all():
        binary.dc(pred, ref), binary.hd(pred, ref, spacing), binary.hd95(pred, ref, spacing)
        binary.assd(pred, ref, spacing), binary.precision(pred, ref), binary.recall(pred, ref), binary.ravd(pred, ref)

    t_medpy = best_of(medpy_all)
    rows = [{"impl": "strokesynth evaluate_case", "seconds": round(t_ours, 4), "ratio_vs_medpy": round(t_medpy / t_ours, 1),
             "lesion_ml": round(ours["ref_ml"], 1), "max_abs_diff": diff},
            {"impl": "medpy dc+hd+hd95+assd+precision+recall+ravd", "seconds": round(t_medpy, 4)}]
    report("metrics", rows, note="256x256x22 at 0.9x0.9x5 mm; ratio = MedPy time / strokesynth time")


if __name__ == "__main__":
    main()
