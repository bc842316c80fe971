"""Errors a user can cause and fix.

Every problem with a user's input (a file, a folder, a config, an output path) is raised as a
subclass of :class:`StrokesynthError`. The CLI prints such an error as one line,
``error: <where>: <what>``, and exits with code 2, without a traceback. Any other exception is a
bug in strokesynth and keeps its traceback.
"""

from __future__ import annotations

import os


class StrokesynthError(Exception):
    """Base class of user-facing errors.

    Args:
        where: the file, folder, case or option the problem is in (``None`` if none applies).
        problem: what is wrong, as a short sentence without a trailing period.
    """

    def __init__(self, where: str | os.PathLike | None, problem: str):
        self.where = None if where is None else str(where)
        self.problem = problem
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message on one line: ``<where>: <problem>``."""
        text = self.problem if self.where is None else f"{self.where}: {self.problem}"
        return " ".join(text.split())


class DataError(StrokesynthError):
    """An input file or data set is unreadable or inconsistent."""


class ConfigError(StrokesynthError):
    """A configuration file or override is invalid."""


class OutputError(StrokesynthError):
    """An output path cannot be written, or would overwrite results without ``--force``."""
