"""Registries: find networks, losses, systems and recipes by name.

A new paper's system is its own files plus one import line: its modules register their parts
with a decorator, and the CLI's choices, ``describe`` and the recipe list read the registries::

    @NETWORKS.register("unet2d", dims=2)
    def build_unet2d(cfg, in_channels): ...

    NETWORKS.build("unet2d", cfg, 5)      # the builder's result
    NETWORKS.names()                       # every registered name, sorted
    NETWORKS.info("unet2d")["dims"]        # what the entry declared (spatial dims, ...)

A registry may name a *provider* module that registers the shipped entries; it is imported on
the first lookup, so ``SYSTEMS.get("segmenter")`` works without importing the systems first
(the same late discovery as entry points, without an import that breaks the package order).
An unknown name raises :class:`~strokesynth.errors.ConfigError` listing the choices.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from strokesynth.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (networks, losses, systems, recipes), each with declared facts."""

    def __init__(self, kind: str, provider: str | None = None) -> None:
        self.kind = kind
        self.provider = provider  # module that registers the shipped entries, imported on first lookup
        self._entries: dict[str, T] = {}
        self._info: dict[str, dict[str, Any]] = {}

    def _load(self) -> None:
        if self.provider is not None:
            provider, self.provider = self.provider, None
            importlib.import_module(provider)

    def register(self, name: str, **info: Any) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` with facts ``info``."""

        def add(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            self._info[name] = dict(info)
            return obj

        return add

    def get(self, name: str) -> T:
        """The entry called ``name``; a one-line error naming the choices otherwise."""
        if name not in self._entries:
            self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(self.kind, f"unknown {self.kind} {name!r} (choose from {', '.join(self.names())})") from None

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the entry ``name`` (a class or builder function) with the given arguments."""
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]

    def info(self, name: str) -> dict[str, Any]:
        """The facts ``name`` was registered with (e.g. ``dims`` for networks)."""
        self.get(name)
        return dict(self._info[name])

    def names(self, **where: Any) -> list[str]:
        """Registered names, sorted; ``where`` keeps those whose facts match (``dims=3``)."""
        self._load()
        return sorted(n for n in self._entries if all(self._info[n].get(k) == v for k, v in where.items()))

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self._load()
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
