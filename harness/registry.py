"""A typed registry with aliases, lazy ``"module:attr"`` entries and entry-point groups.

A registry may name the Protocol its entries satisfy: each entry is checked against it when it is
resolved (built-in or installed), and an incomplete one is refused with what it lacks. A registry
with an entry-point ``group`` also holds the entries that installed distributions declare there
(``[project.entry-points."harness.runtimes"]`` in their pyproject.toml); they are found on the first
lookup or listing and imported only when looked up, as the built-in lazy entries are.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
from collections.abc import Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar, final

from harness.errors import ConfigError

T = TypeVar("T")
DOCS = "docs/extending.md"


class RegistryError(ConfigError):
    """An entry cannot be registered or loaded: a clash, a broken entry point, a Protocol it does not meet."""


class UnknownEntryError(RegistryError, KeyError):
    """No entry of that name; a KeyError too, so ``except KeyError`` callers keep working."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@final
@dataclasses.dataclass(frozen=True)
class EntrySource:
    """Where an entry comes from: the harness itself, or an installed distribution's entry point.

    >>> EntrySource("bar.mod:Adapter", "bar", "1.0", "harness.runtimes").describe("foo")
    'from package bar 1.0 (entry point harness.runtimes: foo = bar.mod:Adapter)'
    >>> EntrySource("harness.runtimes.hf:ADAPTER").describe("hf")
    '(built in: harness.runtimes.hf:ADAPTER)'
    """

    target: str
    distribution: str = ""
    version: str = ""
    group: str = ""

    @property
    def builtin(self) -> bool:
        return not self.distribution

    def describe(self, name: str) -> str:
        if self.builtin:
            return f"(built in: {self.target})" if self.target else "(built in)"
        return f"from package {self.distribution} {self.version} (entry point {self.group}: {name} = {self.target})"

    @classmethod
    def of(cls, point: importlib.metadata.EntryPoint) -> EntrySource:
        dist = point.dist
        return cls(point.value, dist.name if dist else "an unknown distribution", dist.version if dist else "",
                   point.group)


def protocol_members(protocol: type) -> dict[str, bool]:
    """The public members a Protocol (or class) declares: name -> whether it is a method.

    Annotated names are attributes; functions are methods; properties are attributes.
    """
    members: dict[str, bool] = {}
    for klass in reversed(protocol.__mro__):
        if klass in (object, Generic, Protocol) or klass.__module__ == "typing":
            continue
        for name in vars(klass).get("__annotations__", {}):
            members.setdefault(name, False)
        for name, value in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(value, (staticmethod, classmethod)) or callable(value):
                members[name] = True
            elif isinstance(value, property):
                members[name] = False
    return {n: m for n, m in members.items() if not n.startswith("_")}


def lacking(entry: object, protocol: type) -> list[str]:
    """What ``entry`` lacks of ``protocol``, as ``launch()`` for a method and ``attribute 'name'`` otherwise."""
    out = []
    for name, is_method in protocol_members(protocol).items():
        value = getattr(entry, name, _MISSING)
        if value is _MISSING or (is_method and not callable(value)):
            out.append(f"{name}()" if is_method else f"attribute {name!r}")
    return out


_MISSING = object()


class Registry(Generic[T]):
    """Name -> object; refuses duplicates, answers an unknown name with the known ones.

    ``protocol``: what every entry must provide (checked on resolution). ``group``: the entry-point
    group read for installed entries. ``what``: the noun for an entry in errors ("runtime adapter").
    ``instantiate``: a class found for an entry is instantiated with no arguments.
    ``known``: how an unknown-name error introduces the list of names.
    """

    def __init__(self, kind: str, *, protocol: type | None = None, group: str | None = None,
                 what: str | None = None, instantiate: bool = False, known: str = "known") -> None:
        self.kind = kind
        self.protocol = protocol
        self.group = group
        self.what = what or kind
        self.instantiate = instantiate
        self.known = known
        self._entries: dict[str, Any] = {}  # a resolved object, a "module:attr" string, or an EntryPoint
        self._sources: dict[str, EntrySource] = {}
        self._aliases: dict[str, str] = {}
        self._discovered = group is None

    def register(self, name: str, target: T | str, *, aliases: tuple[str, ...] = ()) -> None:
        """Add ``target`` (an object, or ``"package.module:attr"`` resolved and checked on first use)."""
        for key in (name, *aliases):
            if key in self._entries or key in self._aliases:
                raise RegistryError(f"{self.kind} {key!r} is registered twice; pick another name")
        source = EntrySource(target if isinstance(target, str) else "")
        if not isinstance(target, str):
            target = self._checked(name, target, source)
        self._entries[name] = target
        self._sources[name] = source
        self._aliases.update(dict.fromkeys(aliases, name))

    def get(self, name: str) -> T:
        key = self._key(name)
        entry = self._entries[key]
        if isinstance(entry, (str, importlib.metadata.EntryPoint)):
            entry = self._checked(key, self._load(key, entry), self._sources[key])
            self._entries[key] = entry
        return entry

    def source(self, name: str) -> EntrySource:
        """Where the entry ``name`` (or the entry an alias names) comes from; nothing is imported."""
        return self._sources[self._key(name)]

    def _key(self, name: str) -> str:
        """The entry's own name for ``name`` (an alias resolved), or an error listing the known ones."""
        self._discover()
        key = self._aliases.get(name, name)
        if key not in self._entries:
            raise UnknownEntryError(f"unknown {self.kind} {name!r}; {self.known}: {', '.join(self.names())}")
        return key

    def names(self) -> list[str]:
        self._discover()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load(self, name: str, entry: str | importlib.metadata.EntryPoint) -> object:
        """Import the entry's object (a class is instantiated when the registry asks so)."""
        source = self._sources[name]
        try:
            if isinstance(entry, str):
                module, _, attr = entry.partition(":")
                loaded = getattr(importlib.import_module(module), attr)
            else:
                loaded = entry.load()
            return loaded() if self.instantiate and isinstance(loaded, type) else loaded
        except Exception as exc:
            if source.builtin:
                raise
            raise RegistryError(
                f"{self.what} {name!r} {source.describe(name)} failed to load: {type(exc).__name__}: {exc}; "
                f"fix that package or uninstall it (pip uninstall {source.distribution})") from exc

    def _checked(self, name: str, entry: Any, source: EntrySource) -> Any:
        """``entry`` when it meets the Protocol."""
        if self.protocol is None:
            return entry
        missing = lacking(entry, self.protocol)
        if missing:
            raise RegistryError(f"{self.what} {name!r} {source.describe(name)} lacks {_joined(missing)}, which "
                                f"{self.protocol.__name__} requires; see {DOCS}")
        declared = getattr(entry, "name", name) if "name" in protocol_members(self.protocol) else name
        if declared != name:
            raise RegistryError(f"{self.what} {name!r} {source.describe(name)} calls itself {declared!r}; "
                                f"make its name and the name it is registered under (the entry point's) the same")
        return entry

    def _discover(self) -> None:
        """Add the group's entry points once; a clash with a known name refuses them all."""
        if self._discovered:
            return
        found: dict[str, tuple[importlib.metadata.EntryPoint, EntrySource]] = {}
        for point in importlib.metadata.entry_points(group=self.group or ""):
            source = EntrySource.of(point)
            clash = self._clash(point.name, found)
            if clash:
                raise RegistryError(
                    f"{self.what} {point.name!r} {source.describe(point.name)} clashes with {clash}; rename the "
                    f"entry point in {source.distribution}'s pyproject.toml (e.g. "
                    f"'{source.distribution.lower()}-{point.name}') or uninstall one of them")
            found[point.name] = (point, source)
        for name, (point, source) in found.items():
            self._entries[name] = point
            self._sources[name] = source
        self._discovered = True

    def _clash(self, name: str, found: Mapping[str, tuple[Any, EntrySource]]) -> str:
        if name in found:
            return f"the {self.kind} {name!r} {found[name][1].describe(name)}"
        key = self._aliases.get(name, name)
        if key in self._entries:
            alias = f" (an alias of {key!r})" if key != name else ""
            return f"the built-in {self.kind} {name!r}{alias}"
        return ""


def _joined(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
