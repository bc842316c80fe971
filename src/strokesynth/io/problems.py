"""Collecting or raising the problems a reader finds.

Readers run in one of two modes: *strict* (the first problem raises a
:class:`~strokesynth.errors.DataError`, for training and conversion) or *collecting* (every
problem is listed and reading goes on, for ``strokesynth check``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from strokesynth.errors import DataError


@dataclass
class ProblemLog:
    """Problems found while reading a data set, as one-line messages.

    Attributes:
        strict: raise on the first problem instead of collecting.
        problems: the messages collected so far (``<where>: <what>``).
        notes: things worth telling that are not problems (ignored files...).
    """

    strict: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, where: object, problem: str) -> None:
        """Record a problem, or raise it at once in strict mode."""
        error = DataError(None if where is None else str(where), problem)
        if self.strict:
            raise error
        self.problems.append(error.one_line())

    def note(self, where: object, text: str) -> None:
        """Record a remark that does not make the data set invalid."""
        self.notes.append(f"{where}: {text}")

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Run a block; in collecting mode a :class:`DataError` it raises is logged instead."""
        try:
            yield
        except DataError as exc:
            if self.strict:
                raise
            self.problems.append(exc.one_line())
