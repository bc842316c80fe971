"""The report of a pseudo-healthy experiment (Xia, Chartsias & Tsaftaris): the table, the figures
(drawn by :mod:`strokesynth.report.pseudo_healthy_figures` from the run folder), and the real-data example."""

from __future__ import annotations

import os
from pathlib import Path

from strokesynth.report.html import esc, figure, write_page
from strokesynth.report.sources import sources_section


def pseudo_healthy_sections(run_path: str | os.PathLike) -> list[tuple[str, str, str]]:
    """The report sections: the table, the example figures, the real-data example."""
    import json

    run = Path(run_path)
    table = json.loads((run / "ph_table.json").read_text())
    sections = [("table", "Table 1 analog: identity and healthiness",
                 f"<pre>{esc(table['text'])}</pre><p class='note'>Every model keeps its last epoch; the anomaly "
                 "threshold is chosen on training slices; scores are on held-out subjects only.</p>")]
    figs = ""
    for path in sorted((run / "figures").glob("*_examples.png")):
        figs += figure(path, f"{path.stem.split('_')[0].upper()}: input, each method's pseudo-healthy image, the true "
                             "mask and the proposed models' masks (held-out slices)")
    for path in sorted((run / "figures").glob("*_cyclegan_failure.png")):
        figs += figure(path, "CycleGAN failure mode (the paper's Fig. 2): the reconstruction adds a lesion elsewhere")
    if figs:
        sections.append(("figures", "Pseudo-healthy images", figs))
    real = table.get("real_case") or {}
    inner = ""
    for e in real.get("cases", []):
        inner += f"<p>{esc(e['case'])} ({esc(e['contrast'])}): f_pre Dice {e['f_pre_dice']}; " + "; ".join(
            f"{esc(r)}: identity {v['identity']:.3f}, healthiness {v['healthiness']:.3f}" for r, v in e["rows"].items()
        ) + "</p>" + figure(run / e["figure"], "REAL DATA, models trained on the phantom only")
    for n in real.get("notes", []) + ([real["note"]] if "note" in real else []):
        inner += f"<p class='note'>{esc(n)}</p>"
    if inner:
        sections.append(("real", "Real-data example", inner))
    return sections + sources_section(run)


def write_pseudo_healthy_report(run_path: str | os.PathLike, html_path: str | os.PathLike | None = None) -> Path:
    """Write ``RUN/report.html`` (or ``html_path``) for a pseudo-healthy recipe run, drawing its
    figures first from the run's kept models and saved slices."""
    from strokesynth.report.pseudo_healthy_figures import draw_figures

    draw_figures(run_path)
    return write_page(html_path or Path(run_path) / "report.html",
                      "Pseudo-healthy synthesis by pathology factorisation (Xia, Chartsias & Tsaftaris)",
                      pseudo_healthy_sections(run_path))
