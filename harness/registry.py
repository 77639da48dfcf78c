"""A typed registry with aliases and lazy ``"module:attr"`` entries (heavy imports only when used)."""
from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Generic, TypeVar

from harness.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object; refuses duplicates, answers an unknown name with the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, target: T | str, *, aliases: tuple[str, ...] = ()) -> None:
        """Add ``target`` (an object, or ``"package.module:attr"`` resolved on first use)."""
        for key in (name, *aliases):
            if key in self._entries or key in self._aliases:
                raise ConfigError(f"{self.kind} {key!r} is registered twice; pick another name")
        self._entries[name] = target
        self._aliases.update({a: name for a in aliases})

    def get(self, name: str) -> T:
        key = self._aliases.get(name, name)
        if key not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        entry = self._entries[key]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[key] = entry
        return entry  # type: ignore[return-value]

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
