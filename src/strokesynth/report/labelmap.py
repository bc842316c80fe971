"""The report of a label-map augmentation run (Platscher, Zopes & Federau): tables and figures
(drawn by :mod:`strokesynth.report.labelmap_figures`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from strokesynth.report.html import esc, figure, write_page
from strokesynth.report.sources import sources_section


def labelmap_sections(run_path: str | os.PathLike) -> list[tuple[str, str, str]]:
    """Sections: Tables I and II with the lesion-GAN and translation reports, then the figures."""
    run = Path(run_path)
    table = json.loads((run / "labelmap_table.json").read_text())
    sections = [("tables", "Tables I and II analogs, lesion GAN and translation models",
                 f"<pre>{esc(table['text'])}</pre><p class='note'>Checkpoints are chosen on 15 % of each row's own "
                 "training cases; the test subjects (stroke and healthy) are never used for a choice.</p>")]
    captions = {"translations": "Label map -> synthetic DWI, one held-out stroke subject, per model",
                "lesion_gan": "Lesion GAN samples beside training masks (maximum projection along z)",
                "histograms": "Brain intensity histograms of clinical, normal and synthetic DWIs (Fig. 5 analog)"}
    figs = "".join(figure(run / rel, captions.get(k, k)) for k, rel in (table.get("figures") or {}).items()
                   if (run / rel).exists())
    if figs:
        sections.append(("figures", "Figures", figs))
    return sections + sources_section(run)


def write_labelmap_report(run_path: str | os.PathLike, html_path: str | os.PathLike | None = None) -> Path:
    """Write ``RUN/report.html`` (or ``html_path``) for a label-map augmentation run, drawing its
    figures first from the arrays the run saved."""
    from strokesynth.report.labelmap_figures import draw_figures

    draw_figures(run_path)
    return write_page(html_path or Path(run_path) / "report.html",
                      "Label map -> DWI synthesis and lesion GAN augmentation (Platscher, Zopes & Federau)",
                      labelmap_sections(run_path))
