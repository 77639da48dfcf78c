"""The static rules, applied to module facts: accelerator imports, unbound names, platform-only attributes."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping

from harness.portability.callers import function_reach, owner_flags, owner_reach, run_platforms, table_choices
from harness.portability.facts import ClassFacts, ImportSite, ModuleFacts
from harness.portability.finding import Finding
from harness.portability.graph import ImportGraph, Reach, platforms_of
from harness.portability.platforms import ALL, NONE, PlatformSet, ordered
from harness.portability.predicates import NameClassifier
from harness.portability.profile import RuntimeProfile
from harness.portability.severity import Ranker

_MAX_REEXPORT_HOPS = 5


@dataclasses.dataclass(frozen=True)
class RuleContext:
    """Everything the rules share: the profile, all module facts, and where modules are imported.

    ``strict`` also reports reads that sit under non-platform tests, which are
    usually configuration choices (``if backend == "flashinfer":``).
    """

    profile: RuntimeProfile
    modules: Mapping[str, ModuleFacts]
    import_reach: Reach
    run_reach: Reach
    ranker: Ranker
    strict: bool = False

    @functools.cached_property
    def classes(self) -> dict[str, tuple[ModuleFacts, ClassFacts]]:
        """Every analysed class by dotted name."""
        return {f"{m.module}.{c.qualname}": (m, c) for m in self.modules.values() for c in m.classes}

    @functools.cached_property
    def overrides(self) -> dict[str, dict[str, PlatformSet]]:
        """``module.Base`` -> method -> platforms that use a subclass overriding it instead.

        ``class AWQLinearAscendMethod(AWQLinearMethod)`` overriding ``apply``: NPU never runs
        ``AWQLinearMethod.apply``. The platform comes from the subclass's name.
        """
        classifier = NameClassifier(self.profile)
        found: dict[str, dict[str, PlatformSet]] = {}
        for facts, cls in self.classes.values():
            platforms = classifier.name_platforms(cls.qualname.rpartition(".")[2])
            if not platforms or platforms == ALL:
                continue
            for base in cls.bases:
                located = _find_class(facts.resolve(base), self.classes, self.modules)
                if located is not None:
                    methods = found.setdefault(f"{located[0].module}.{located[1].qualname}", {})
                    for method in cls.methods:
                        methods[method] = methods.get(method, NONE) | platforms
        return found

    @functools.cached_property
    def functions(self) -> dict[str, PlatformSet]:
        """Public module-level functions whose every in-tree reference sits under a platform check."""
        return function_reach(self.modules)

    def runs_on(self, facts: ModuleFacts, owner: str | None) -> PlatformSet:
        """Platforms where ``owner`` runs: a helper only where its callers run, a method not where a
        subclass replaces it."""
        if owner is None:
            return ALL
        if "." not in owner:
            return self.functions.get(f"{facts.module}.{owner}", ALL)
        cls, _, method = owner.rpartition(".")
        return ALL - self.overrides.get(f"{facts.module}.{cls}", {}).get(method, NONE)

    @classmethod
    def build(cls, profile: RuntimeProfile, modules: Mapping[str, ModuleFacts], *, strict: bool = False) -> RuleContext:
        """Compute the import graph and both reach maps."""
        classifier = NameClassifier(profile)
        graph = ImportGraph.build(
            modules, profile.entry_packages,
            lambda module: classifier.name_platforms(module.replace(".", "_")) or ALL,
            profile.start_modules, import_stops(profile, modules),
        )
        run_reach = graph.reach(import_time_only=False)
        return cls(profile, modules, graph.reach(import_time_only=True), run_reach,
                   Ranker.build(profile, graph, run_reach), strict)


def _names(platforms: PlatformSet) -> str:
    return "{" + ", ".join(ordered(platforms)) + "}" if platforms else "no platform"


def all_findings(rules: RuleContext) -> Iterator[Finding]:
    """Every static finding."""
    yield from accel_import_findings(rules)
    yield from lazy_accel_import_findings(rules)
    yield from missing_name_findings(rules)
    yield from unbound_name_findings(rules)
    yield from imported_name_findings(rules)
    yield from platform_attr_findings(rules)


def accel_import_findings(rules: RuleContext) -> Iterator[Finding]:
    """Accelerator-only imports run at import time, unguarded, on a platform where the module is imported.

    One finding per module, package and platform set: the first such import raises, the
    ones below it in the same module never run (they are counted in the hint).
    """
    for facts in rules.modules.values():
        reached = platforms_of(rules.run_reach, facts.module)  # also a module only a function imports
        groups: dict[tuple[str, PlatformSet, int], list[tuple[ImportSite, str]]] = {}
        for site in facts.imports:
            found = _accel_target(rules.profile, site, reached)
            if found is not None:  # a line with a portable-ok marker stays its own finding
                marked = site.line if site.line in facts.markers or site.line in facts.empty_markers else 0
                groups.setdefault((found[0], found[1], marked), []).append((site, found[2]))
        for (package, affected, _), sites in groups.items():
            site, target = min(sites, key=lambda s: s[0].line)
            more = f" ({len(sites) - 1} more import(s) of it below)" if len(sites) > 1 else ""
            yield Finding.create(
                "accel-import", facts.path, site.line, target, affected,
                f"`{package}` only imports on {_names(rules.profile.accelerator_packages[package])}"
                f"{_via(rules, facts, affected)}{more}: import it inside the function that uses it, "
                f"under a platform check, or in try/except ImportError",
            ).ranked(*rules.ranker.at_import(facts.module, affected))


def lazy_accel_import_findings(rules: RuleContext) -> Iterator[Finding]:
    """Accelerator-only imports inside functions, run where the function runs (model construction, a kernel call).

    One finding per function and package; ranked like any call site (*breaks* only where the
    platform's own check or dispatch sends it there).
    """
    for facts in rules.modules.values():
        lazy = [s for s in facts.imports if not s.import_time and not s.guarded
                and not (s.conditional and not rules.strict)]
        if not lazy:
            continue
        reached = platforms_of(rules.run_reach, facts.module)
        callers, constructed = owner_reach(facts), _constructed(rules, facts)
        groups: dict[tuple[str | None, str], list[tuple[ImportSite, str, PlatformSet]]] = {}
        for site in lazy:
            ctx = run_platforms(callers, site.owner, site.ctx) & _owner_class(constructed, site.owner)
            ctx &= rules.runs_on(facts, site.owner)
            target = site.target
            found = rules.profile.available_on(target)
            affected = NONE if found is None else (ctx - found[1]) & reached
            if found and affected:
                groups.setdefault((site.owner, found[0]), []).append((site, target, affected))
        for (owner, package), sites in groups.items():
            site, target, affected = min(sites, key=lambda s: s[0].line)
            yield Finding.create(
                "accel-import", facts.path, site.line, target, affected,
                f"`{package}` only imports on {_names(rules.profile.accelerator_packages[package])} and "
                f"{owner or 'this code'} imports it when it runs: import it under a platform check "
                f"or in try/except ImportError",
                "call",
            ).ranked(*rules.ranker.at_call(facts.module, affected, owner, site.selected))


def missing_name_findings(rules: RuleContext) -> Iterator[Finding]:
    """``from pkg import name`` at import time where ``pkg`` imports but that platform's build lacks ``name``.

    One finding per module, listed name's package and platform set (the first such import raises).
    Where the whole package is not importable, ``accel-import`` reports it instead.
    """
    for facts in rules.modules.values():
        reached = platforms_of(rules.run_reach, facts.module)
        groups: dict[tuple[str, PlatformSet], list[tuple[ImportSite, str, str]]] = {}
        for site in facts.imports:
            target = site.target
            missing = rules.profile.missing_on(target) if site.import_time and not site.guarded else None
            if missing is None:
                continue
            package = rules.profile.available_on(target)
            affected = site.ctx & missing[1] & (package[1] if package else ALL) & reached
            if affected:
                groups.setdefault((target.split(".")[0], affected), []).append((site, target, missing[0]))
        for (package_name, affected), sites in groups.items():
            site, target, listed = min(sites, key=lambda s: s[0].line)
            yield Finding.create(
                "platform-missing-name", facts.path, site.line, target, affected,
                f"`{package_name}` imports on {_names(affected)} but its build there lacks `{listed}`"
                f"{_via(rules, facts, affected)}: import it under a platform check that leaves "
                f"{_names(affected)} out, or in try/except (ImportError, AttributeError)",
            ).ranked(*rules.ranker.at_import(facts.module, affected))


def _accel_target(profile: RuntimeProfile, site: ImportSite, reached: PlatformSet) -> tuple[str, PlatformSet, str] | None:
    """(accelerator package, platforms the import breaks on, imported name) for an import-time site."""
    if not site.import_time or site.guarded or not (site.ctx & reached):
        return None
    target = site.target
    found = profile.available_on(target)
    affected = NONE if found is None else (site.ctx - found[1]) & reached
    return (found[0], affected, target) if found and affected else None


def import_stops(profile: RuntimeProfile, modules: Mapping[str, ModuleFacts]) -> dict[str, dict[str, int]]:
    """For each module, the line of its first import that raises on each platform (accelerator-only, unguarded).

    Imports below that line never run there, so what they import is not imported at start.
    """
    stops: dict[str, dict[str, int]] = {}
    for facts in modules.values():
        for site in facts.imports:
            found = _accel_target(profile, site, ALL)
            for platform in found[1] if found else ():
                here = stops.setdefault(facts.module, {})
                here[platform] = min(here.get(platform, site.line), site.line)
    return stops


def _via(rules: RuleContext, facts: ModuleFacts, affected: PlatformSet) -> str:
    """How the module gets imported on the first affected platform."""
    platform = ordered(affected)[0]
    importer = rules.import_reach.get(facts.module, {}).get(platform)
    if importer is None:
        return ""
    return f", and {facts.module} is imported on {platform} by {importer}"


def unbound_name_findings(rules: RuleContext) -> Iterator[Finding]:
    """Module-level names bound only under some platform checks, read where they are unbound."""
    for facts in rules.modules.values():
        reached = platforms_of(rules.run_reach, facts.module)
        callers = owner_reach(facts) if facts.uses else {}
        constructed = _constructed(rules, facts) if facts.uses else {}
        vouched = owner_flags(facts) if facts.uses else {}
        tables = table_choices(facts) if facts.uses else {}
        for use in facts.uses:
            bound = facts.bindings.get(use.name, NONE)
            if not bound or (use.conditional and not use.import_time and not rules.strict):
                continue
            if use.name in vouched.get(use.owner or "", ()):
                continue  # every call of this method tests the name's availability flag first
            ctx = run_platforms(callers, use.owner, use.ctx) & _owner_class(constructed, use.owner)
            ctx &= rules.runs_on(facts, use.owner)
            affected = (ctx - bound - facts.star_ctx) & reached
            if not use.conditional:  # a platform check sends it here, where a switch may have left it unbound
                affected |= ctx & use.selected & (bound - facts.must_bindings.get(use.name, bound)) & reached
            if affected:
                finding = Finding.create(
                    "platform-unbound-name", facts.path, use.line, use.name, affected,
                    f"`{use.name}` is bound only {_bound_where(facts, use.name)}; bind it on every platform "
                    f"(e.g. `else: {use.name} = None`) or read it under the same check",
                    "import" if use.import_time else "call",
                )
                yield finding.ranked(*_rank(rules, facts.module, affected, use.import_time, use.owner, use.selected,
                                            tables.get(use.owner or "")))


def _bound_where(facts: ModuleFacts, name: str) -> str:
    """``on {cuda}``, or ``on {rocm} when a test that is not about the platform also holds``."""
    bound = facts.bindings.get(name, NONE)
    surely = facts.must_bindings.get(name, bound) & bound
    if surely == bound:
        return f"on {_names(bound)}"
    switch = (f"on {_names(bound - surely)} when a test that is not about the platform also holds "
              f"(an environment switch or an option)")
    return f"on {_names(surely)}, and {switch}" if surely else switch


def _rank(rules: RuleContext, module: str, affected: PlatformSet, import_time: bool,
          owner: str | None, selected: PlatformSet, table: str | None = None) -> tuple[str, str, str | None]:
    if import_time:
        return rules.ranker.at_import(module, affected)
    return rules.ranker.at_call(module, affected, owner, selected, table)


def _constructed(rules: RuleContext, facts: ModuleFacts) -> dict[str, PlatformSet]:
    """Where each class of ``facts`` can have instances: ``__init__`` raising off CUDA makes it {cuda}."""
    index = rules.classes
    found = {}
    for cls in facts.classes:
        lineage = _lineage(facts, cls, index, rules.modules)
        found[cls.qualname] = next((c.init_platforms for c in lineage if c.init_platforms is not None), ALL)
    return found


def _owner_class(constructed: Mapping[str, PlatformSet], owner: str | None) -> PlatformSet:
    """Platforms where the method ``owner`` (``Cls.method``) can run on an instance."""
    if owner is None or "." not in owner:
        return ALL
    return constructed.get(owner.rpartition(".")[0], ALL)


def imported_name_findings(rules: RuleContext) -> Iterator[Finding]:
    """``from m import f`` where ``m`` (analysed here) binds ``f`` only on some platforms."""
    for facts in rules.modules.values():
        for site in facts.imports:
            source = _platform_bound_source(site, rules.modules)
            if source is None or (site.conditional and not site.import_time and not rules.strict):
                continue
            name = site.name or ""
            reach = rules.import_reach if site.import_time else rules.run_reach
            affected = (site.ctx - source.bindings[name] - source.star_ctx) & platforms_of(reach, facts.module)
            if affected:
                yield Finding.create(
                    "platform-unbound-name", facts.path, site.line, name, affected,
                    f"`{site.module}` binds `{site.name}` only {_bound_where(source, name)}, so this "
                    f"import raises ImportError elsewhere; import it under the same platform "
                    f"check or bind it on every platform in `{site.module}`",
                    "import" if site.import_time else "call",
                ).ranked(*_rank(rules, facts.module, affected, site.import_time, None, NONE))


def _platform_bound_source(site: ImportSite, modules: Mapping[str, ModuleFacts]) -> ModuleFacts | None:
    if site.name is None or site.guarded or not site.ctx:
        return None
    source = modules.get(site.module)
    if source is None or f"{site.module}.{site.name}" in modules:
        return None
    return source if source.bindings.get(site.name) else None


def platform_attr_findings(rules: RuleContext) -> Iterator[Finding]:
    """``self.x`` read where no assignment of ``x`` in the class or its bases can have run."""
    index = rules.classes
    for facts in rules.modules.values():
        callers = owner_reach(facts)
        for cls in facts.classes:
            if cls.loads:
                yield from _class_attr_findings(rules, facts, cls, index, callers)


def _class_attr_findings(
    rules: RuleContext,
    facts: ModuleFacts,
    cls: ClassFacts,
    index: Mapping[str, tuple[ModuleFacts, ClassFacts]],
    callers: Mapping[str, PlatformSet],
) -> Iterator[Finding]:
    lineage = _lineage(facts, cls, index, rules.modules)
    defined = set().union(*(c.class_names for c in lineage))
    stores: dict[str, PlatformSet] = {}
    for member in lineage:
        for attr, where in member.stores.items():
            stores[attr] = stores.get(attr, NONE) | where
    reached = platforms_of(rules.run_reach, facts.module)
    constructed = next((c.init_platforms for c in lineage if c.init_platforms is not None), ALL)
    reached &= constructed  # no instance exists where __init__ always raises
    for use in cls.loads:
        where = stores.get(use.attr, NONE)
        if use.attr in defined or not where or (use.conditional and not rules.strict):
            continue
        affected = (run_platforms(callers, use.owner, use.ctx) & rules.runs_on(facts, use.owner) - where) & reached
        if affected:
            yield Finding.create(
                "platform-only-attr", facts.path, use.line, f"{cls.qualname}.{use.attr}", affected,
                f"`self.{use.attr}` is assigned only on {_names(where)}; give it a value on "
                f"every platform in __init__ (e.g. `self.{use.attr} = None`) or read it under "
                f"the same platform check",
                "call",
            ).ranked(*rules.ranker.at_call(facts.module, affected, use.owner, use.selected))


def _lineage(
    facts: ModuleFacts,
    cls: ClassFacts,
    index: Mapping[str, tuple[ModuleFacts, ClassFacts]],
    modules: Mapping[str, ModuleFacts],
) -> list[ClassFacts]:
    """The class and every base that can be found among the analysed modules."""
    seen: dict[int, ClassFacts] = {}
    stack = [(facts, cls)]
    while stack:
        owner, current = stack.pop()
        if id(current) in seen:
            continue
        seen[id(current)] = current
        for base in current.bases:
            found = _find_class(owner.resolve(base), index, modules)
            if found is not None:
                stack.append(found)
    return list(seen.values())


def _find_class(
    qualified: str,
    index: Mapping[str, tuple[ModuleFacts, ClassFacts]],
    modules: Mapping[str, ModuleFacts],
) -> tuple[ModuleFacts, ClassFacts] | None:
    """Look a class up by dotted name, following re-exports such as ``from .layer import X``."""
    for _ in range(_MAX_REEXPORT_HOPS):
        if qualified in index:
            return index[qualified]
        module, _, name = qualified.rpartition(".")
        owner = modules.get(module)
        if owner is None or name not in owner.aliases:
            return None
        qualified = owner.aliases[name]
    return None
