"""The optional ``strokesynth.json`` file at the root of a data set, in any layout.

Layouts have no common way to say which scans share a subject, which modality lives on its
own grid, or what a case was called before a conversion renamed its folder. This small file
says it; every reader honours it and every writer writes it::

    {
      "format": "strokesynth-dataset/1",
      "subjects": {"case_1": "subj_001", "case_2": "subj_001"},
      "own_grid": ["flair"],
      "case_ids": {"sub-p1_ses-0001": "case_1"}
    }

``subjects`` maps case id -> subject id (cases not listed are their own subject);
``own_grid`` lists modality keys that need not share the case grid; ``case_ids`` maps the id a
layout derives from its file names to the case's original id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from strokesynth._fs import write_json_atomic
from strokesynth.errors import DataError

META_NAME = "strokesynth.json"
FORMAT = "strokesynth-dataset/1"


@dataclass
class DatasetMeta:
    """Contents of ``strokesynth.json``; every field may be empty."""

    subjects: dict[str, str] = field(default_factory=dict)
    own_grid: list[str] = field(default_factory=list)
    case_ids: dict[str, str] = field(default_factory=dict)

    def case_id(self, layout_id: str) -> str:
        """The original id of a case whose layout-derived id is ``layout_id``."""
        return self.case_ids.get(layout_id, layout_id)

    def subject(self, case_id: str, default: str | None = None) -> str:
        """Subject of ``case_id`` (``default``, else the case id itself, if not listed)."""
        return self.subjects.get(case_id, default if default is not None else case_id)


def read_meta(root: Path) -> DatasetMeta:
    """Read ``root/strokesynth.json`` if present; an empty :class:`DatasetMeta` otherwise."""
    path = Path(root) / META_NAME
    if not path.exists():
        return DatasetMeta()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise DataError(path, "expected a JSON object")
    unknown = set(raw) - {"format", "subjects", "own_grid", "case_ids"}
    if unknown:
        raise DataError(path, f"unknown field(s) {', '.join(sorted(unknown))}")
    try:
        meta = DatasetMeta(
            subjects={str(k): str(v) for k, v in dict(raw.get("subjects", {})).items()},
            own_grid=[str(k) for k in list(raw.get("own_grid", []))],
            case_ids={str(k): str(v) for k, v in dict(raw.get("case_ids", {})).items()},
        )
    except (TypeError, ValueError) as exc:
        raise DataError(path, f"malformed content ({exc})") from None
    return meta


def write_meta(root: Path, meta: DatasetMeta) -> None:
    """Write ``root/strokesynth.json`` (atomically)."""
    obj = {
        "format": FORMAT,
        "subjects": dict(sorted(meta.subjects.items())),
        "own_grid": sorted(set(meta.own_grid)),
        "case_ids": dict(sorted(meta.case_ids.items())),
    }
    write_json_atomic(Path(root) / META_NAME, obj)
