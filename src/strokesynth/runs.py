"""Run folders: one place per experiment for config, splits, logs, metrics and checkpoints.

::

    runs/<name>/
      config.yaml        the resolved config (defaults + file + overrides)
      splits.json        subject-level folds
      run.log            the log
      metrics/           per-epoch CSV and JSON
      checkpoints/       model states (written atomically)
      figures/           PNGs for the report
      report.html

A new run refuses a non-empty folder unless ``force`` is given; :meth:`RunDir.resume` reopens
an existing one (to continue from its last checkpoint).

``force`` never destroys the old result before the new one exists: the old folder is moved
aside (``.<name>.<pid>.<random>.backup`` next to it) and the new run starts in an empty folder.
The CLI ends every command with one of three calls: :func:`finish_runs` (it succeeded:
the backups go), :func:`undo_replacements` (it failed: run folders it created are removed, so a
corrected re-run is not blocked, and replaced results come back) or :func:`keep_interrupted`
(Ctrl-C: the unfinished run stays for ``--resume``, the old result stays in its backup). A run
killed outright leaves its backup in place and the next run there names it: nothing is lost.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from strokesynth._fs import (
    check_output,
    claim_output,
    ensure_writable_dir,
    pid_alive,
    write_json_atomic,
    write_text_atomic,
)
from strokesynth.config import save_config
from strokesynth.errors import DataError, OutputError

SUBDIRS = ("metrics", "checkpoints", "figures")


#: run folder -> the backup of the result it replaces, for this process
_REPLACED: dict[Path, Path] = {}
#: run folders this process created (-> whether an empty folder was there before)
_CREATED: dict[Path, bool] = {}


def _move_aside(path: Path) -> None:
    """Move the non-empty run folder ``path`` to a hidden backup and recreate it empty."""
    path = path.resolve()
    if path in _REPLACED:  # replaced twice in one command: the first backup is the old result
        shutil.rmtree(path)
    else:
        backup = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".backup", dir=path.parent))
        backup.rmdir()
        os.replace(path, backup)
        _REPLACED[path] = backup
    path.mkdir()


def finish_replacements() -> None:
    """Delete the backups of the run folders this process replaced (the new results are complete)."""
    while _REPLACED:
        _, backup = _REPLACED.popitem()
        shutil.rmtree(backup, ignore_errors=True)


def finish_runs() -> None:
    """The command succeeded: forget created folders and delete the backups of replaced ones."""
    _CREATED.clear()
    finish_replacements()


def undo_replacements() -> list[Path]:
    """The command failed: remove the run folders it created and put back the results it was
    replacing; returns the restored folders."""
    while _CREATED:
        path, existed = _CREATED.popitem()
        if path in _REPLACED:
            continue
        shutil.rmtree(path, ignore_errors=True)
        if existed:
            path.mkdir(exist_ok=True)
    restored = []
    while _REPLACED:
        path, backup = _REPLACED.popitem()
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        os.replace(backup, path)
        restored.append(path)
    return restored


def keep_interrupted() -> list[tuple[Path, Path | None]]:
    """Ctrl-C: keep every unfinished run (``--resume`` continues it) and every backup; returns
    (run folder, backup of the result it was replacing or None)."""
    kept = [(p, _REPLACED.get(p)) for p in _CREATED]
    _CREATED.clear()
    _REPLACED.clear()
    return kept


def stale_backups(path: str | os.PathLike) -> list[Path]:
    """Backups of ``path`` left by ``--force`` runs that were killed (their process is gone)."""
    path = Path(path).resolve()
    out = []
    prefix = f".{path.name}."
    try:  # compared as text, not as a glob: a folder name may hold '*' or '['
        entries = sorted(e for e in path.parent.iterdir() if e.name.startswith(prefix) and e.name.endswith(".backup"))
    except OSError:
        entries = []
    for entry in entries:
        parts = entry.name[len(prefix):].split(".")
        if parts and parts[0].isdigit() and not pid_alive(int(parts[0])):
            out.append(entry)
    return out


atexit.register(finish_runs)  # Python API: a script that returns normally keeps its new results


class RunDir:
    """A run folder (see module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | os.PathLike, *, force: bool = False) -> RunDir:
        """Make a fresh run folder; an existing non-empty one needs ``force`` (it is emptied).

        ``path`` is resolved (a symlink names its target) and refused if it is, holds or lies
        inside an input of the running command (:func:`strokesynth._fs.check_output`)."""
        path = check_output(path)
        existed = path.is_dir()
        if path.exists():
            if not path.is_dir():
                raise OutputError(path, "run path exists and is not a folder")
            if any(path.iterdir()):
                if not force:
                    raise OutputError(path, "run folder exists and is not empty (use --force to replace it)")
                claim_output(path)  # never touch a folder another process is writing
                _move_aside(path)
        ensure_writable_dir(path)
        claim_output(path)
        _CREATED.setdefault(path.resolve(), existed)
        for backup in stale_backups(path):
            sys.stderr.write(f"note: {backup} holds the result a killed --force run was replacing; "
                             "it is kept, delete it when not needed\n")
        run = cls(path)
        for sub in SUBDIRS:
            (path / sub).mkdir(exist_ok=True)
        return run

    @classmethod
    def resume(cls, path: str | os.PathLike) -> RunDir:
        """Reopen an existing run folder (it must hold a config.yaml)."""
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise DataError(path, "not a run folder (no config.yaml)")
        return cls(path)

    @classmethod
    def reopen(cls, path: str | os.PathLike) -> RunDir:
        """:meth:`resume` for writing: also takes the folder's writer lock for this process."""
        run = cls.resume(path)
        claim_output(run.path)
        return run

    def file(self, *parts: str) -> Path:
        """A path inside the run folder."""
        return self.path.joinpath(*parts)

    def save_config(self, cfg: Any) -> None:
        save_config(cfg, self.file("config.yaml"))

    def save_json(self, name: str, obj: Any) -> Path:
        path = self.file(name)
        write_json_atomic(path, obj)
        return path

    def load_json(self, name: str) -> Any:
        return json.loads(self.file(name).read_text(encoding="utf-8"))

    def save_table(self, name: str, rows: list[dict[str, Any]]) -> Path:
        """Write ``rows`` as CSV (columns from the union of keys, in first-seen order)."""
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        path = self.file(name)
        write_text_atomic(path, buf.getvalue())
        return path

    def logger(self, name: str = "strokesynth") -> logging.Logger:
        """A logger that appends to ``run.log``."""
        log = logging.getLogger(f"{name}.{self.path.resolve()}")
        if not log.handlers:
            handler = logging.FileHandler(self.file("run.log"), encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = False
        return log
