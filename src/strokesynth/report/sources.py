"""The report section of a run's ``data_sources.json``: which session every image came from."""

from __future__ import annotations

import json
import os
from pathlib import Path

from strokesynth.data.provenance import SOURCES, crosses_sessions
from strokesynth.report.html import esc, table


def sources_section(run_path: str | os.PathLike) -> list[tuple[str, str, str]]:
    """The report section of a run's ``data_sources.json`` (none when the run has no record)."""
    path = Path(run_path) / SOURCES
    if not path.is_file():
        return []
    record = json.loads(path.read_text(encoding="utf-8"))
    rows = [[key, v["role"], s, n, v["notes"].get(s, "")] for key, v in record["keys"].items()
            for s, n in sorted(v["sessions"].items())]
    inner = table(rows, ["key", "role", "session", "cases", "what the session is"])
    if crosses_sessions(record):
        inner += ("<p class='note'>The inputs and the targets or labels come from different sessions: the model "
                  "learns across the days between them.</p>")
    inner += (f"<p class='note'>Layout(s): {esc(', '.join(record['layouts']))}. Every case's file of every key is "
              f"listed in <code>{SOURCES}</code>.</p>")
    return [("sources", "Where every image came from", inner)]
