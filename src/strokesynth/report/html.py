"""Self-contained HTML pages: tables, figures embedded as base64 PNG, nothing fetched.

A report opens offline in any browser and can be mailed as one file; the PNGs it embeds are
also kept next to it (``figures/``) for papers and slides.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from strokesynth._fs import write_text_atomic

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1180px;
color:#1d1d1f;line-height:1.45;padding:0 1em}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:right;white-space:nowrap}th{background:#f3f3f5;white-space:normal;max-width:11em;vertical-align:bottom}td:first-child,th:first-child{text-align:left}
figure{margin:.8em 0}figure img{max-width:100%;border:1px solid #e3e3e3}figcaption{font-size:.85em;color:#555}
.note{color:#555;font-size:.92em}.toc a{margin-right:1em}code{background:#f3f3f5;padding:0 .2em}
"""


def esc(text: Any) -> str:
    """HTML-escaped ``str(text)``."""
    return html.escape(str(text))


def fmt(v: Any, digits: int = 3) -> str:
    """A number for a table cell (NaN and None as an en dash, inf as ∞)."""
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "∞"
        return f"{v:.{digits}f}"
    return str(v)


def mean_sd(s: dict[str, Any], digits: int = 3) -> str:
    """``mean ± sd`` of a summary cell (``{"mean", "sd", "undefined"}``), undefined count in brackets."""
    text = fmt(s["mean"], digits)
    if s.get("sd") is not None and not (isinstance(s["sd"], float) and math.isnan(s["sd"])):
        text += f" ± {fmt(s['sd'], digits)}"
    if s.get("undefined"):
        text += f" [{s['undefined']}]"
    return text


#: Column keys of strokesynth's tables -> headers a reader understands, with units.
HEADERS = {
    "case": "case", "fold": "fold", "method": "method", "core_ml": "true core (ml)",
    "cases": "scans", "subjects": "subjects", "healthy_subjects": "subjects without a stroke",
    "cases_without_core": "scans without core in the slab", "slices": "slices per slab",
    "cases_by_size": "scans by core volume",
    "cbf_ratio_normal": "CBF computed / true, normal tissue", "cbv_ratio_normal": "CBV computed / true, normal tissue",
    "tmax_err_normal_s": "Tmax error, normal tissue (s)", "tmax_abs_err_normal_s": "Tmax |error|, normal tissue (s)",
    "earliest_artery_s": "slab's earliest artery after the carotid (s)",
    "tmax_err_slab_s": "Tmax error from the slab's earliest artery (s)",
    "tmax_abs_err_slab_s": "Tmax |error| from the slab's earliest artery (s)",
    "aif_late_s": "AIF late after the slab's earliest artery (s)", "core_dice_cbf_threshold": "Dice of CBF < 30 % vs true core",
    "hypoperfusion_dice_tmax6": "Dice of Tmax > 6 s vs true core + penumbra",
    "cbf_invalid_pct": "CBF < 0 set to 0 (% brain)", "cbv_invalid_pct": "CBV < 0 set to 0 (% brain)",
    "mtt_invalid_pct": "MTT < 0 set to 0 (% brain)", "tmax_invalid_pct": "Tmax < 0 set to 0 (% brain)",
    "noise_hu": "noise (HU per frame)", "cbf_bias": "CBF bias (relative)", "cbf_abs_err": "CBF |error| (relative)",
    "cbv_abs_err": "CBV |error| (relative)", "mtt_abs_err": "MTT |error| (relative)", "tmax_bias_s": "Tmax bias (s)",
    "tmax_mae_s": "Tmax |error| (s)", "delay_sensitivity": "CBF spread over delays 0-4 s",
    "ssim_brain": "SSIM, brain", "psnr_brain": "PSNR, brain (dB)", "mae_brain": "MAE, brain",
    "ssim_lesion": "SSIM, lesion box", "psnr_lesion": "PSNR, lesion box (dB)", "mae_lesion": "MAE, lesion box",
    "contrast_generated": "lesion/brain, generated", "contrast_real": "lesion/brain, reference DWI",
    "dice": "Dice", "hd": "Hausdorff (mm)", "hd95": "HD95 (mm)", "assd": "avg. surface distance (mm)",
    "precision": "precision", "recall": "recall", "avd_ml": "abs. volume diff. (ml)", "rve": "relative volume error",
    "lesion_f1": "lesion-wise F1 (ISLES'22: any overlap)",
    "lesion_f1_isles24": "lesion-wise F1 (ISLES'24: one to one, IoU >= 0.2)", "ref_ml": "reference (ml)", "pred_ml": "predicted (ml)",
}


def reference_dwi_name(dataset: str | os.PathLike) -> str:
    """What to call a data set's DWI in a report: ``simulated DWI`` for the phantom (it has
    ``groundtruth/phantom.json``), ``real DWI`` otherwise."""
    return "simulated DWI" if (Path(dataset) / "groundtruth" / "phantom.json").exists() else "real DWI"


def human(key: str) -> str:
    """The header of a column key (:data:`HEADERS`; unknown keys with underscores as spaces)."""
    return HEADERS.get(key, key.replace("_", " "))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """An HTML table from already formatted cells."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def dict_table(rows: Sequence[dict[str, Any]], cols: Sequence[str] | None = None, digits: int = 3) -> str:
    """A table of dicts (columns in first-seen order unless given; headers from :func:`human`)."""
    if not rows:
        return "<p class='note'>(no rows)</p>"
    cols = list(cols or dict.fromkeys(k for r in rows for k in r))
    return table([[fmt(r.get(c), digits) for c in cols] for r in rows], [human(c) for c in cols])


def figure(path: str | os.PathLike, caption: str = "") -> str:
    """A ``<figure>`` with the PNG at ``path`` embedded as a data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f"<figure><img alt='{esc(caption or Path(path).name)}' src='data:image/png;base64,{data}'>{cap}</figure>"


def page(title: str, sections: Sequence[tuple[str, str, str]], intro: str = "") -> str:
    """A whole page: ``sections`` are ``(anchor id, heading, inner HTML)``."""
    toc = "".join(f"<a href='#{esc(a)}'>{esc(h)}</a>" for a, h, _ in sections)
    body = "".join(f"<section id='{esc(a)}'><h2>{esc(h)}</h2>{inner}</section>" for a, h, inner in sections)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{intro}<p class='toc'>{toc}</p>{body}"
            "</body></html>\n")


def write_page(path: str | os.PathLike, title: str, sections: Sequence[tuple[str, str, str]], intro: str = "") -> Path:
    """Write :func:`page` atomically to ``path``."""
    write_text_atomic(path, page(title, sections, intro))
    return Path(path)
