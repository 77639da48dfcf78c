"""Static analysis of a source tree: parse each module, collect facts, apply the rules."""

from __future__ import annotations

import ast
import concurrent.futures
import dataclasses
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from harness.portability.facts import ModuleFacts
from harness.portability.finding import Finding
from harness.portability.graph import platforms_of
from harness.portability.guards import imported_predicates
from harness.portability.platforms import PlatformSet
from harness.portability.predicates import ConditionEvaluator, NameClassifier
from harness.portability.profile import RuntimeProfile
from harness.portability.rules import RuleContext, all_findings
from harness.portability.severity import Ranker
from harness.portability.suppress import apply_markers, scan_markers
from harness.portability.walker import FactWalker

_PARALLEL_FROM = 64  # files; below this a worker pool costs more than it saves


@dataclasses.dataclass(frozen=True)
class SourceModule:
    """One ``.py`` file and the dotted module name it imports as."""

    module: str
    path: Path
    relpath: str
    is_package: bool


@dataclasses.dataclass(frozen=True)
class Analysis:
    """Findings for a source tree, inline markers already applied.

    ``import_reach`` maps each module to the platforms where something imports it at
    import time (entries such as model files: every platform).
    """

    root: str
    packages: tuple[str, ...]
    files: int
    seconds: float
    findings: tuple[Finding, ...]
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    import_reach: Mapping[str, PlatformSet] = dataclasses.field(default_factory=dict)
    markers: Mapping[str, Mapping[int, str]] = dataclasses.field(default_factory=dict)
    ranker: Ranker | None = None  # ranks findings found later (the import probe's)


def source_modules(root: Path, packages: Sequence[str]) -> list[SourceModule]:
    """Every module under the given packages of ``root`` (the directory holding the top package)."""
    found: dict[str, SourceModule] = {}
    for package in packages:
        base = root.joinpath(*package.split("."))
        if base.with_suffix(".py").is_file():
            path = base.with_suffix(".py")
            found[package] = SourceModule(package, path, path.relative_to(root).as_posix(), False)
            continue
        if not base.is_dir():
            raise FileNotFoundError(
                f"package {package!r} not found under {str(root)!r} (looked for {str(base)!r}); "
                f"check --package or point --source at the directory that contains "
                f"{package.split('.')[0]!r}"
            )
        for path in sorted(base.rglob("*.py")):
            module = _module_name(path, root)
            if module is not None:
                found[module] = SourceModule(
                    module, path, path.relative_to(root).as_posix(), path.name == "__init__.py"
                )
    return list(found.values())


def _module_name(path: Path, root: Path) -> str | None:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def module_source(root: Path, module: str) -> SourceModule | None:
    """The file ``module`` imports from under ``root`` (``a/b.py`` or ``a/b/__init__.py``), if any."""
    base = root.joinpath(*module.split("."))
    for path, package in ((base / "__init__.py", True), (base.with_suffix(".py"), False)):
        if path.is_file():
            return SourceModule(module, path, path.relative_to(root).as_posix(), package)
    return None


def imported_sources(root: Path, facts: Iterable[ModuleFacts], known: set[str], top: str) -> list[SourceModule]:
    """In-tree modules ``facts`` import at module level (and their parent packages), not in ``known`` yet."""
    wanted: set[str] = set()
    for module in facts:
        for site in module.imports:
            if not site.import_time:
                continue  # a lazy import inside a function runs only when it is called
            names = [site.module, f"{site.module}.{site.name}"] if site.name else [site.module]
            for name in names:
                parts = name.split(".")
                wanted.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    found = []
    for name in sorted(wanted - known):
        if name.split(".")[0] == top and (source := module_source(root, name)) is not None:
            found.append(source)
    return found


def module_facts(source: SourceModule, profile: RuntimeProfile, classifier: NameClassifier | None = None,
                 imported: Mapping[str, PlatformSet] | None = None) -> ModuleFacts:
    """Parse one module and walk it; ``imported``: predicate functions it imports, by local name."""
    facts = ModuleFacts(source.module, source.relpath, source.is_package)
    try:
        text = source.path.read_text(encoding="utf-8-sig")  # a BOM at the start is not code
        tree = ast.parse(text, filename=str(source.path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as exc:
        facts.error = f"{source.relpath}: cannot parse: {exc}"
        return facts
    facts.markers, facts.empty_markers = scan_markers(text)
    evaluator = ConditionEvaluator(classifier or NameClassifier(profile), profile)
    evaluator.functions.update(imported or {})
    return FactWalker(facts, evaluator).run(tree)


_WORKER: tuple[RuntimeProfile, NameClassifier] | None = None


def _init_worker(profile: RuntimeProfile) -> None:
    global _WORKER
    _WORKER = (profile, NameClassifier(profile))


def _worker_facts(sources: list[SourceModule]) -> list[ModuleFacts]:
    assert _WORKER is not None, "worker pool started without _init_worker"
    profile, classifier = _WORKER
    return [module_facts(s, profile, classifier) for s in sources]


def collect_facts(sources: Sequence[SourceModule], profile: RuntimeProfile, jobs: int | None = None) -> list[ModuleFacts]:
    """Facts for every module, in a process pool when there are many files."""
    workers = jobs or os.cpu_count() or 1
    if workers <= 1 or len(sources) < _PARALLEL_FROM:
        classifier = NameClassifier(profile)
        return [module_facts(s, profile, classifier) for s in sources]
    # Interleave files so each worker gets a similar mix of large and small modules.
    chunks = [list(sources[i::workers * 4]) for i in range(workers * 4)]
    try:
        with concurrent.futures.ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(profile,)) as pool:
            return [facts for batch in pool.map(_worker_facts, chunks) for facts in batch]
    except (OSError, concurrent.futures.process.BrokenProcessPool):
        return collect_facts(sources, profile, jobs=1)  # no worker processes here; parse in-process


def analyse_tree(
    root: str | Path,
    packages: Sequence[str],
    profile: RuntimeProfile,
    *,
    jobs: int | None = None,
    strict: bool = False,
) -> Analysis:
    """Run every static rule over ``packages`` found under ``root``."""
    started = time.monotonic()
    root = Path(root).resolve()
    facts = _all_facts(root, packages, profile, jobs)
    modules = {f.module: f for f in facts}
    rules = RuleContext.build(profile, modules, strict=strict)
    findings = _dedupe(all_findings(rules))
    markers = {m.path: m.markers for m in facts}
    warnings = [
        f"{m.path}:{line}: portable-ok() needs a reason, e.g. "
        f"`# harness: portable-ok(only reached on CUDA)`; marker ignored"
        for m in facts for line in m.empty_markers
    ]
    return Analysis(
        root=str(root),
        packages=tuple(packages),
        files=len(facts),
        seconds=round(time.monotonic() - started, 3),
        findings=tuple(apply_markers(findings, markers)),
        errors=tuple(m.error for m in facts if m.error),
        warnings=tuple(warnings),
        import_reach={m: platforms_of(rules.import_reach, m) for m in modules},
        markers={path: lines for path, lines in markers.items() if lines},
        ranker=rules.ranker,
    )


def _all_facts(root: Path, packages: Sequence[str], profile: RuntimeProfile, jobs: int | None) -> list[ModuleFacts]:
    """Facts of the listed packages, the entry packages and start modules present under ``root``, and
    (``follow_imports``) what they import."""
    entries = [p for p in profile.entry_packages if p not in packages and root.joinpath(*p.split(".")).is_dir()]
    sources = source_modules(root, [*packages, *entries])
    listed = {s.module for s in sources}
    sources += [s for m in profile.start_modules if m not in listed and (s := module_source(root, m)) is not None]
    facts = collect_facts(sources, profile, jobs)
    if profile.follow_imports:
        facts += _follow_imports(root, facts, profile, jobs)
    return _with_imported_predicates(root, facts, profile)


def _with_imported_predicates(root: Path, facts: list[ModuleFacts], profile: RuntimeProfile) -> list[ModuleFacts]:
    """Walk again the modules that import a predicate function of another module, knowing it."""
    known = {f"{m.module}.{name}": where for m in facts for name, where in m.predicate_functions.items()}
    if not known:
        return facts
    classifier = NameClassifier(profile)
    result = []
    for module in facts:
        imported = {name: where for name, where in imported_predicates(module.aliases, known).items()
                    if classifier.predicate(name) is None}  # `is_hip` is known by its name already
        source = module_source(root, module.module) if imported else None
        result.append(module_facts(source, profile, classifier, imported) if source is not None else module)
    return result


def _follow_imports(root: Path, facts: list[ModuleFacts], profile: RuntimeProfile, jobs: int | None) -> list[ModuleFacts]:
    """Facts of every in-tree module reachable by imports from ``facts``, beyond the listed packages.

    Model files import from the whole distribution (``sglang.kernels``, ``sglang.srt.mem_cache``):
    what they pull in at start is analysed too, and a chain through it is reported.
    """
    known = {f.module for f in facts}
    added: list[ModuleFacts] = []
    frontier = facts
    while True:
        more = imported_sources(root, frontier, known, profile.top_package)
        if not more:
            return added
        frontier = collect_facts(more, profile, jobs)
        known.update(s.module for s in more)
        added += frontier


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    unique = {(f.rule, f.path, f.line, f.symbol): f for f in findings}
    return sorted(unique.values(), key=lambda f: (f.path, f.line, f.rule, f.symbol))
