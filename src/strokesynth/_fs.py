"""Atomic writes: a file or folder appears complete, or not at all.

Files are written under a hidden temporary name in the destination folder and moved into
place with :func:`os.replace` (atomic on POSIX within one file system). Whole output folders
(a converted data set, a run) are built in a hidden sibling folder and renamed at the end, so
an error or a kill never leaves a half-written result, and an existing result is only
replaced when the caller passes ``force=True``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from strokesynth.errors import OutputError


def ensure_writable_dir(path: Path) -> None:
    """Create ``path`` (and parents) or raise :class:`OutputError` saying why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (PermissionError, FileExistsError, NotADirectoryError, OSError) as exc:
        raise OutputError(path, f"cannot create output folder ({exc.strerror or exc})") from None
    if not path.is_dir():
        raise OutputError(path, "output path exists and is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(path, "output folder is not writable")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` if the block succeeds.

    ``suffix`` keeps the extension that writers look at (``".nii.gz"``); by default it is
    everything after the first dot of the file name.
    """
    path = Path(path)
    ensure_writable_dir(path.parent)
    if suffix is None:
        name = path.name
        suffix = name[name.index(".") :] if "." in name else ""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".partial{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield an empty hidden folder next to ``dest``; rename it to ``dest`` if the block succeeds.

    Raises:
        OutputError: ``dest`` exists and is not empty while ``force`` is false, or its parent
            cannot be written.
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise OutputError(dest, "output path exists and is not a folder")
    if dest.exists() and not force:
        if any(dest.iterdir()):
            raise OutputError(dest, "output folder exists and is not empty (use --force to replace it)")
    ensure_writable_dir(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            old.rmdir()
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
