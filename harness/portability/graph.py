"""The import graph of the analysed modules, and on which platforms each module gets imported."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Mapping, Sequence

from harness.portability.facts import ModuleFacts
from harness.portability.platforms import ALL, PLATFORMS, Platform, PlatformSet

# Where a module is imported on a platform, and through which importer (None for an entry).
Reach = dict[str, dict[str, "str | None"]]


@dataclasses.dataclass(frozen=True)
class ImportEdge:
    """``importer`` imports ``target`` on ``ctx``, at import time or lazily."""

    importer: str
    target: str
    ctx: PlatformSet
    import_time: bool
    line: int = 0
    guarded: bool = False  # inside try/except ImportError: a failure there is caught


@dataclasses.dataclass(frozen=True)
class ImportGraph:
    """Edges between analysed modules, parent packages included.

    Entries are the modules the runtime imports on every platform (for SGLang the
    model registry imports each direct child of ``sglang.srt.models``) plus modules
    nothing here imports, which are assumed to be imported from elsewhere. ``starts``
    are the first kind only: what the runtime imports at start (registry, server entry).
    """

    edges: Mapping[str, tuple[ImportEdge, ...]]
    entries: Mapping[str, PlatformSet]
    starts: Mapping[str, PlatformSet] = dataclasses.field(default_factory=dict)
    stops: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)

    @classmethod
    def build(
        cls,
        modules: Mapping[str, ModuleFacts],
        entry_packages: Sequence[str],
        orphan_platforms: Callable[[str], PlatformSet] = lambda module: ALL,
        start_modules: Sequence[str] = (),
        stops: Mapping[str, Mapping[str, int]] | None = None,
    ) -> ImportGraph:
        """Collect edges from every module's import sites.

        A module nothing here imports is assumed imported from elsewhere, on the
        platforms its name suggests (``wave_ops.prefill_attention`` -> {rocm}).
        """
        edges: dict[str, list[ImportEdge]] = collections.defaultdict(list)
        for facts in modules.values():
            parent = facts.module.rpartition(".")[0]
            if parent in modules:
                edges[facts.module].append(ImportEdge(facts.module, parent, ALL, True))
            for site in facts.imports:
                for target in _targets(site.module, site.name, modules):
                    if target != facts.module:
                        edges[facts.module].append(
                            ImportEdge(facts.module, target, site.ctx, site.import_time, site.line, site.guarded)
                        )
        imported = {e.target for group in edges.values() for e in group}
        starts = {m: ALL for m in modules if m.rpartition(".")[0] in entry_packages or m in start_modules}
        entries = dict(starts)
        entries.update({m: orphan_platforms(m) for m in modules if m not in imported and m not in entries})
        return cls({k: tuple(v) for k, v in edges.items()}, entries, starts, stops or {})

    def reach(self, *, import_time_only: bool, starts_only: bool = False) -> Reach:
        """For each module, the platforms it is imported on and one importer that does it.

        ``starts_only`` follows only what the runtime imports at start, not orphan modules, not
        imports inside try/except ImportError (a failure there is caught, nothing breaks), and not
        imports below one that raises on that platform (``stops``: they never run there).
        """
        found: Reach = collections.defaultdict(dict)
        queue: collections.deque[tuple[str, Platform]] = collections.deque()
        for entry, platforms in sorted((self.starts if starts_only else self.entries).items()):
            for platform in PLATFORMS:
                if platform in platforms:
                    found[entry][platform] = None
                    queue.append((entry, platform))
        while queue:
            module, platform = queue.popleft()
            for edge in self.edges.get(module, ()):
                if platform not in edge.ctx or (import_time_only and not edge.import_time):
                    continue
                if starts_only and (edge.guarded or edge.line > self.stops.get(module, {}).get(platform, edge.line)):
                    continue  # caught, or below an import that already raised on this platform
                if platform not in found[edge.target]:
                    found[edge.target][platform] = module
                    queue.append((edge.target, platform))
        return found


    def edge(self, importer: str, target: str, platform: str) -> ImportEdge | None:
        """The import-time edge ``importer`` -> ``target`` that runs on ``platform``."""
        return next((e for e in self.edges.get(importer, ())
                     if e.target == target and e.import_time and not e.guarded and platform in e.ctx), None)

    def chain(self, reach: Reach, module: str, platform: str) -> list[tuple[str, ImportEdge | None]]:
        """The importers from a start module down to ``module`` on ``platform``, first link first."""
        links: list[tuple[str, ImportEdge | None]] = []
        current: str | None = module
        seen: set[str] = set()
        while current is not None and current not in seen:
            seen.add(current)
            importer = reach.get(current, {}).get(platform)
            links.append((current, self.edge(importer, current, platform) if importer else None))
            current = importer
        return links[::-1]


def _targets(module: str, name: str | None, modules: Mapping[str, ModuleFacts]) -> list[str]:
    """Analysed modules an import executes: ``from a import b`` runs ``a`` and, if a module, ``a.b``."""
    found = [module] if module in modules else []
    if name is not None and f"{module}.{name}" in modules:
        found.append(f"{module}.{name}")
    return found


def platforms_of(reach: Reach, module: str) -> PlatformSet:
    """The platforms on which ``module`` is reached."""
    return frozenset(reach.get(module, {}))
