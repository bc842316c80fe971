"""Shared helpers of the layout readers and writers: files -> Case, Case -> files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from strokesynth.data.case import Case
from strokesynth.data.modalities import get_modality
from strokesynth.errors import DataError, OutputError
from strokesynth.io.nifti import read_volume, write_volume

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def case_from_files(
    case_id: str,
    subject: str,
    files: dict[str, Path],
    *,
    own_grid: frozenset[str] | set[str] = frozenset(),
    where: Path | str | None = None,
    meta: dict[str, Any] | None = None,
    volume_meta: dict[str, dict[str, Any]] | None = None,
) -> Case:
    """Open every file lazily with its modality's kind and dimensionality, and build a Case.

    Args:
        files: modality key -> NIfTI path.
        volume_meta: optional modality key -> facts to attach to that volume (sidecars).
    """
    volumes = {}
    for key, path in sorted(files.items()):
        spec = get_modality(key, str(path))
        volumes[key] = read_volume(
            path, kind=spec.kind, ndim=spec.ndim, meta=(volume_meta or {}).get(key)
        )
    return Case(
        case_id,
        subject,
        volumes,
        own_grid=frozenset(own_grid) & set(volumes),
        meta=dict(meta or {}),
        where=str(where) if where is not None else None,
    )


def safe_name(text: str, what: str = "case id") -> str:
    """Return ``text`` if it is usable as a file name, else raise an :class:`OutputError`."""
    if not _SAFE.match(text):
        raise OutputError(None, f"{what} {text!r} cannot be used as a file name (use letters, digits, . _ -)")
    return text


def write_case_volumes(case: Case, targets: dict[str, Path]) -> None:
    """Write each modality ``key`` of ``case`` to ``targets[key]``."""
    for key, path in targets.items():
        write_volume(case[key], path)


def check_unique(ids: list[str], where: object) -> None:
    """Raise if two cases share an id."""
    seen: set[str] = set()
    for cid in ids:
        if cid in seen:
            raise DataError(str(where), f"two cases share the id {cid!r}")
        seen.add(cid)
