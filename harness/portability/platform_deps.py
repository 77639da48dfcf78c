"""What each platform installs, read from the runtime's own distribution metadata.

A package is not accelerator-only in general; it is simply not installed on a platform whose
dependency set does not bring it in. SGLang declares those sets as extras (``srt``, ``srt_hip``,
``srt_npu``, ``srt_xpu``, ``srt_cpu`` in its older wheels) or as one pyproject file per platform
in a checkout (``pyproject_npu.toml``, ``pyproject_xpu.toml``, ...). A distribution some platforms
install and others do not becomes an accelerator package for the platforms that install it; the
hand-kept list in ``profile.py`` stays as an override (it wins where both speak).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement

from harness.portability.platforms import ALL, PLATFORMS, PlatformSet, ordered

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

_MAX_EXTRA_HOPS = 8  # sglang[srt_hip] -> sglang[runtime_common] -> ...


def normalise(name: str) -> str:
    """PEP 503 name: ``Flashinfer_Python`` -> ``flashinfer-python``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclasses.dataclass(frozen=True)
class PlatformDeps:
    """Distributions each platform installs, and where that was read."""

    installs: Mapping[str, frozenset[str]]  # platform -> normalised distribution names
    sources: tuple[str, ...]

    def accelerator_distributions(self) -> dict[str, PlatformSet]:
        """Distributions installed on some platforms that declare dependencies but not all of them.

        A platform that declares nothing is assumed to have everything: it is not judged.
        """
        known = frozenset(p for p in PLATFORMS if p in self.installs)
        every = set().union(*self.installs.values()) if self.installs else set()
        found = {}
        for dist in sorted(every):
            where = frozenset(p for p in known if dist in self.installs[p])
            if len(known) > 1 and where != known:
                found[dist] = where | (ALL - known)
        return found

    def accelerator_packages(self, imports: Mapping[str, str], root: Path | None = None) -> dict[str, PlatformSet]:
        """The same, by import name: an installed distribution's ``top_level.txt`` under ``root``,
        else ``imports`` (distribution -> package), else the distribution name itself."""
        return {_import_name(dist, imports, root): where for dist, where in self.accelerator_distributions().items()}

    def describe(self) -> str:
        """``cuda 41, npu 12 distributions (from METADATA, pyproject_npu.toml)``."""
        counts = ", ".join(f"{p} {len(self.installs[p])}" for p in ordered(self.installs))
        return f"{counts} distributions (from {', '.join(self.sources)})" if self.installs else "no per-platform dependencies declared"


def _import_name(dist: str, imports: Mapping[str, str], root: Path | None) -> str:
    if dist in imports:
        return imports[dist]
    for top_level in sorted(root.glob("*.dist-info/top_level.txt")) if root is not None else ():
        if normalise(top_level.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0]) == dist:
            names = top_level.read_text().split()
            if names:
                return names[0]
    return dist.replace("-", "_")


def read_platform_deps(root: Path, distribution: str, extras: Mapping[str, str],
                       pyprojects: Mapping[str, str]) -> PlatformDeps:
    """Per-platform dependency sets from ``<dist>-*.dist-info/METADATA`` and pyproject files under ``root``.

    ``extras``: extra name -> platform (``srt_npu: npu``); ``pyprojects``: file name -> the platform
    its base dependencies install on (``pyproject_npu.toml: npu``); their extras map through ``extras``.
    """
    installs: dict[str, set[str]] = {}
    sources = []
    wanted = normalise(distribution)
    for metadata in sorted(root.glob("*.dist-info/METADATA")):
        if normalise(metadata.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0]) == wanted:
            _merge(installs, _from_metadata(metadata.read_text(errors="replace"), wanted, extras))
            sources.append(metadata.name)
    for name, platform in pyprojects.items():
        path = root / name
        if path.is_file():
            _merge(installs, _from_pyproject(path, wanted, extras, platform))
            sources.append(name)
    return PlatformDeps({p: frozenset(d) for p, d in installs.items() if d}, tuple(sources))


def _merge(into: dict[str, set[str]], found: Mapping[str, set[str]]) -> None:
    for platform, dists in found.items():
        into.setdefault(platform, set()).update(dists)


def _from_metadata(text: str, project: str, extras: Mapping[str, str]) -> dict[str, set[str]]:
    """Per-platform sets from ``Requires-Dist`` lines (a wheel's base set says nothing per platform)."""
    lines = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]
    declared = {line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Provides-Extra:")}
    by_extra: dict[str, list[Requirement]] = {}
    for requirement in _requirements(lines):
        for extra in _extras_of(requirement, declared | set(extras)):
            by_extra.setdefault(extra, []).append(requirement)
    return _platform_sets(by_extra, project, extras)


def _from_pyproject(path: Path, project: str, extras: Mapping[str, str], platform: str) -> dict[str, set[str]]:
    data = tomllib.loads(path.read_text()).get("project", {})
    by_extra = {normalise(k): list(_requirements(v)) for k, v in data.get("optional-dependencies", {}).items()}
    found = _platform_sets(by_extra, project, extras)
    base = {normalise(r.name) for r in _requirements(data.get("dependencies", [])) if normalise(r.name) != project}
    if platform and base:
        found.setdefault(platform, set()).update(base)
    return found


def _requirements(lines: Iterable[str]) -> Iterable[Requirement]:
    for line in lines:
        try:
            yield Requirement(line)
        except InvalidRequirement:
            continue


def _extras_of(requirement: Requirement, extras: Iterable[str]) -> list[str]:
    """The extras whose environment selects ``requirement`` (``extra == "srt_npu"``)."""
    if requirement.marker is None or "extra" not in str(requirement.marker):
        return []  # a base dependency, whatever its platform markers
    found = []
    for extra in {normalise(e) for e in extras}:
        try:
            if requirement.marker.evaluate({"extra": extra}):
                found.append(extra)
        except UndefinedEnvironmentName:
            continue
    return found


def _platform_sets(by_extra: Mapping[str, list[Requirement]], project: str, extras: Mapping[str, str]) -> dict[str, set[str]]:
    """Each platform extra's distributions, following ``project[other_extra]`` references."""
    found: dict[str, set[str]] = {}
    for extra, platform in extras.items():
        pending, seen, dists = [normalise(extra)], set(), set()
        for _ in range(_MAX_EXTRA_HOPS):
            pending = [e for e in pending if e not in seen]
            if not pending:
                break
            seen.update(pending)
            nested: list[str] = []
            for requirement in (r for e in pending for r in by_extra.get(e, ())):
                if normalise(requirement.name) == project:
                    nested.extend(normalise(e) for e in requirement.extras)
                else:
                    dists.add(normalise(requirement.name))
            pending = nested
        if dists:
            found.setdefault(platform, set()).update(dists)
    return found
