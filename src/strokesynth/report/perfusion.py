"""The perfusion-accuracy report: computed maps against the phantom's truth, curve-level
accuracy per method and noise level, and (if given) the OSIPI DRO."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from strokesynth._fs import write_text_atomic


def markdown_table(rows: list[dict[str, Any]], cols: list[str] | None = None) -> str:
    """``rows`` as a GitHub-flavoured Markdown table (headers from
    :func:`strokesynth.report.html.human`; None shows as an en dash)."""
    if not rows:
        return "(no rows)\n"
    cols = cols or list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v: Any) -> str:
        if v is None:
            return "–"
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    from strokesynth.report.html import human

    lines = ["| " + " | ".join(human(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_perfusion_report(path: str | os.PathLike, per_case: list[dict[str, Any]], curves: list[dict[str, Any]],
                           dro: list[dict[str, Any]] | None = None, method: str = "osvd") -> None:
    """Write the Markdown report to ``path``."""
    def col_median(key: str) -> str:
        vals = [r[key] for r in per_case if r.get(key) is not None]
        return f"{np.median(vals):.3g}" if vals else "–"

    parts = [
        "# Perfusion accuracy\n",
        f"Maps computed from each simulated 4D CTP by `strokesynth.perfusion` ({method}, automatic AIF with "
        "venous scaling), compared with the phantom's ground truth. Normal tissue: grey and white matter with "
        "true Tmax < 3 s. Core by threshold: CBF < 30 % of the brain median; hypoperfusion: Tmax > 6 s.\n",
        "## Per scan\n",
        markdown_table(per_case),
        f"\nMedians over scans: CBF ratio {col_median('cbf_ratio_normal')}, CBV ratio {col_median('cbv_ratio_normal')}, "
        f"Tmax error {col_median('tmax_err_normal_s')} s (absolute {col_median('tmax_abs_err_normal_s')} s); "
        f"against the truth counted from the slab's earliest artery {col_median('tmax_err_slab_s')} s "
        f"(absolute {col_median('tmax_abs_err_slab_s')} s; a slab without the carotid has no artery that fills at "
        f"delay 0, so every analysis reads Tmax early there by `earliest_artery_s`), "
        f"AIF late by {col_median('aif_late_s')} s after the slab's earliest artery, thresholded-core Dice {col_median('core_dice_cbf_threshold')}, "
        f"Tmax>6 s Dice {col_median('hypoperfusion_dice_tmax6')}.\n",
        "\nPhysically impossible values (negative CBF, CBV, MTT or Tmax, from noise and deconvolution ringing) "
        "are set to 0 and flagged in the perfusion output (`invalid.nii.gz`); the `% brain` columns count them. "
        f"Medians over scans: CBF {col_median('cbf_invalid_pct')} %, CBV {col_median('cbv_invalid_pct')} %, "
        f"MTT {col_median('mtt_invalid_pct')} %, Tmax {col_median('tmax_invalid_pct')} %.\n",
        "\n## Curves of the forward model, by method and noise (HU per frame)\n",
        "Grey matter, white matter, penumbra and core at delays 0-4 s; errors are medians of relative errors; "
        "delay sensitivity is the largest spread (max/min - 1) of a tissue's mean CBF across delays.\n",
        markdown_table(curves, ["method", "noise_hu", "cbf_bias", "cbf_abs_err", "cbv_abs_err", "mtt_abs_err",
                                "tmax_bias_s", "tmax_mae_s", "delay_sensitivity"]),
    ]
    if dro is not None:
        parts += ["\n## OSIPI DSC digital reference object (kh = rho = 1)\n", markdown_table(dro)]
    write_text_atomic(path, "\n".join(parts))
