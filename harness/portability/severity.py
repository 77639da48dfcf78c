"""Severity by reachability: does a platform hit a finding at start, only under a user choice, or never?

*breaks*: the module is imported at start on that platform (model registry, server entry, or a
chain of module-level imports from them) and the finding runs at import time, or the platform's
own dispatch sends it to the call site (``forward_npu``, ``elif _is_npu:``). *option*: only under
a choice the user makes (a quantization method, an attention backend, a model). *latent*: no path.
"""

from __future__ import annotations

import dataclasses

from harness.portability.graph import ImportEdge, ImportGraph, Reach, platforms_of
from harness.portability.platforms import ALL, PlatformSet, ordered
from harness.portability.profile import RuntimeProfile

Rank = tuple[str, str, "str | None"]  # severity, how the platform reaches it, the option it needs
_MAX_LINKS = 8


def _names(platforms: PlatformSet) -> str:
    return "{" + ", ".join(ordered(platforms)) + "}"


@dataclasses.dataclass(frozen=True)
class Ranker:
    """Ranks findings of one analysed tree; ``start_reach`` follows only what the runtime imports at start."""

    profile: RuntimeProfile
    graph: ImportGraph
    start_reach: Reach
    run_reach: Reach  # also through imports inside functions

    @classmethod
    def build(cls, profile: RuntimeProfile, graph: ImportGraph, run_reach: Reach) -> Ranker:
        """Compute the start reach of ``graph``."""
        return cls(profile, graph, graph.reach(import_time_only=True, starts_only=True), run_reach)

    def started_on(self, module: str) -> PlatformSet:
        """Platforms on which the runtime imports ``module`` at start."""
        return platforms_of(self.start_reach, module)

    def at_import(self, module: str, affected: PlatformSet) -> Rank:
        """Rank a finding that runs when ``module`` is imported."""
        hit = affected & self.started_on(module)
        if hit:
            platform = ordered(hit)[0]
            return "breaks", f"imported at start on {_names(hit)}: {self.chain(module, platform)}", None
        if self.orphan(module):
            return "latent", "no module of the runtime imports it", None
        option = self.option_for(module)
        if option is not None:
            return "option", f"imported only with {option}", option
        lazy = self.lazy_importer(module, affected)
        if lazy is not None and (option := self.option_for(lazy)) is not None:
            return "option", f"imported when {lazy} runs an import inside a function, used only with {option}", option
        return "latent", f"nothing the runtime imports at start imports it on {_names(affected)}", None

    def at_call(self, module: str, affected: PlatformSet, owner: str | None, selected: PlatformSet,
                table: str | None = None) -> Rank:
        """Rank a finding that runs when the code around it is called; ``table``: the dispatch-table
        keys that alone choose ``owner``."""
        hit = affected & selected & self.started_on(module)
        where = owner or "module code"
        if hit:
            platform = ordered(hit)[0]
            return ("breaks", f"{_names(hit)} is sent to {where} by its own platform check or dispatch; "
                              f"{self.chain(module, platform)}", None)
        if self.orphan(module):
            return "latent", "no module of the runtime imports it", None
        option = f"the dispatch-table entry {table}" if table else self.option_for(module)
        if option is not None:
            return "option", f"called in {where}, used only with {option}", option
        return "latent", f"no platform check or dispatch sends {_names(affected)} to {where}", None

    def lazy_importer(self, module: str, affected: PlatformSet) -> str | None:
        """The module whose function imports ``module`` on one of ``affected``, when nothing imports it at start."""
        found = self.run_reach.get(module, {})
        for platform in ordered(affected):
            importer = found.get(platform)
            if importer and any(e.target == module and not e.import_time and platform in e.ctx
                                for e in self.graph.edges.get(importer, ())):
                return importer
        return None

    def orphan(self, module: str) -> bool:
        """Whether no analysed module imports ``module`` at all (and the runtime does not start it)."""
        return module in self.graph.entries and module not in self.graph.starts

    def option_for(self, module: str) -> str | None:
        """The user choice a module belongs to: ``sglang.srt.layers.quantization.gguf`` -> ``--quantization gguf``."""
        best = max((p for p in self.profile.option_modules if module == p or module.startswith(p + ".")),
                   key=len, default=None)
        if best is None:
            return None
        rest = module[len(best) + 1:].split(".")[0] if module != best else best.rpartition(".")[2]
        return self.profile.option_modules[best].format(name=rest)

    def chain(self, module: str, platform: str) -> str:
        """``a (model registry) -> b (line 12) -> c (line 3, guard admits {...})``: each line is the import in the link before."""
        links = self.graph.chain(self.start_reach, module, platform)
        parts = [_link(name, edge, self._start_kind(name)) for name, edge in links]
        if len(parts) > _MAX_LINKS:
            parts = [*parts[:2], f"… {len(parts) - _MAX_LINKS + 2} more …", *parts[-(_MAX_LINKS - 3):]]
        return " -> ".join(parts)

    def _start_kind(self, module: str) -> str:
        if module.rpartition(".")[0] in self.profile.entry_packages:
            return "model registry"
        return "server entry" if module in self.profile.start_modules else ""


def _link(name: str, edge: ImportEdge | None, start: str) -> str:
    if edge is None:
        return f"{name} ({start})" if start else name
    guard = "" if edge.ctx == ALL else f", guard admits {_names(edge.ctx)}"
    return f"{name} (line {edge.line}{guard})" if edge.line else name
