"""Errors a user can cause and fix.

Every problem with a user's input (a file, a folder, a config, an output path) is raised as a
subclass of :class:`StrokesynthError`. The CLI prints such an error as one line,
``error: <where>: <what>``, and exits with code 2, without a traceback. Any other exception is a
bug in strokesynth: the CLI prints one line naming it and the file its traceback was saved to.
"""

from __future__ import annotations

import os

#: Longest error line the CLI prints.
MAX_LINE = 600


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
        """The message on one line: ``<where>: <problem>``, at most :data:`MAX_LINE` characters
        (a value echoed from a config can be any size)."""
        text = self.problem if self.where is None else f"{self.where}: {self.problem}"
        if len(text) > 4 * MAX_LINE:
            text = text[:4 * MAX_LINE]
        text = " ".join(text.split())
        return text if len(text) <= MAX_LINE else f"{text[:MAX_LINE - 30]}... (cut at {MAX_LINE} characters)"


class DataError(StrokesynthError):
    """An input file or data set is unreadable or inconsistent."""


class ConfigError(StrokesynthError):
    """A configuration file or override is invalid."""


class OutputError(StrokesynthError):
    """An output path cannot be written, or would overwrite results without ``--force``."""
