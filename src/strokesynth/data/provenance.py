"""Where every image of a run came from: the session and file of each key a run reads.

An ISLES'24 subject has two sessions: the acute CT study (``ses-01``: NCCT, CTA, CTP and its
maps) and the follow-up MRI 2-9 days later (``ses-02``: DWI, ADC and the final-infarct mask).
A model that learns the follow-up DWI or the final infarct from the acute scans learns across
those days, and its report must say so. Every recipe run saves ``data_sources.json``
(:func:`save_data_sources`): for each key it reads, its role (input, target, label), the
session(s) it came from with the number of cases, and every case's file; every report shows it
(:func:`strokesynth.report.sources.sources_section`). Layouts without sessions (the phantom's ISLES 2018 slabs, plain
folders) are recorded as one study.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from strokesynth._fs import write_text_atomic
from strokesynth.data.case import Case

#: the run folder's record
SOURCES = "data_sources.json"

#: session -> what it holds, for the layouts that have sessions (ISLES'24)
SESSION_NOTES = {
    "ses-01": "acute: NCCT, CTA, CTP and its maps",
    "ses-02": "follow-up MRI 2-9 days after the CTP (the lesion is the final infarct)",
}

#: the session name of a layout without sessions
ONE_STUDY = "one study"


def data_sources(cases: list[Case], roles: Mapping[str, str]) -> dict[str, Any]:
    """The record of ``roles`` (key -> ``"input"``, ``"target"``, ``"label"``, ...) over ``cases``.

    Returns ``{"keys": {key: {"role", "sessions": {session: cases}, "notes": {session: text}}},
    "cases": {case id: {key: {"session", "file"}}}, "layouts": [...]}``; a key a case lacks is left
    out of that case (and not counted)."""
    keys: dict[str, Any] = {k: {"role": role, "sessions": {}, "notes": {}} for k, role in roles.items()}
    per_case: dict[str, dict[str, Any]] = {}
    layouts: set[str] = set()
    for case in cases:
        sessions = case.meta.get("sessions") or {}
        files = case.meta.get("files") or {}
        layouts.add(str(case.meta.get("layout", "unknown")))
        row: dict[str, Any] = {}
        for key in roles:
            if key not in case:
                continue
            session = str(sessions.get(key, ONE_STUDY))
            path = case[key].path
            row[key] = {"session": session, "file": str(files.get(key, path if path is not None else "in memory"))}
            entry = keys[key]
            entry["sessions"][session] = entry["sessions"].get(session, 0) + 1
            if session in SESSION_NOTES:
                entry["notes"][session] = SESSION_NOTES[session]
        per_case[case.id] = row
    return {"keys": keys, "cases": per_case, "layouts": sorted(layouts)}


def crosses_sessions(record: Mapping[str, Any]) -> bool:
    """Whether the run's inputs and its targets or labels come from different sessions."""
    inputs = {s for v in record["keys"].values() if v["role"] == "input" for s in v["sessions"]}
    others = {s for v in record["keys"].values() if v["role"] != "input" for s in v["sessions"]}
    return bool(inputs and others and inputs != others)


def save_data_sources(folder: str | os.PathLike, cases: list[Case], roles: Mapping[str, str]) -> dict[str, Any]:
    """Write ``folder/data_sources.json`` (atomically) and return the record."""
    record = data_sources(cases, roles)
    write_text_atomic(Path(folder) / SOURCES, json.dumps(record, indent=1) + "\n")
    return record


def source_lines(record: Mapping[str, Any]) -> list[str]:
    """One line per key: ``dwi (target): ses-02 x 20 - follow-up MRI ...``."""
    lines = []
    for key, v in record["keys"].items():
        parts = [f"{s} x {n}" + (f" ({v['notes'][s]})" if s in v["notes"] else "") for s, n in sorted(v["sessions"].items())]
        lines.append(f"{key} ({v['role']}): " + ("; ".join(parts) or "not in any case"))
    if crosses_sessions(record):
        lines.append("inputs and targets come from different sessions: the model learns across the days between them")
    return lines
