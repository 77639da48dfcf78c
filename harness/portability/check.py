"""One portability run: locate the source, analyse it, probe imports, apply suppressions and baseline."""

from __future__ import annotations

import collections
import dataclasses
import sys
from pathlib import Path
from typing import Any

import yaml

from harness.portability.analyzer import Analysis, analyse_tree, source_modules
from harness.portability.baseline import Baseline
from harness.portability.finding import SEVERITIES, Finding, Severity
from harness.portability.locate import RuntimeSource, locate_runtime
from harness.portability.platform_deps import read_platform_deps
from harness.portability.platforms import ALL, PLATFORMS, Platform, PlatformSet, ordered
from harness.portability.probe import ProbeConfig, ProbeFailure, ProbeResult, run_probe
from harness.portability.profile import PROFILES, RuntimeProfile
from harness.portability.report import build_result
from harness.portability.suppress import SuppressionFile, apply_markers


@dataclasses.dataclass(frozen=True)
class PortabilityOptions:
    """Everything one run needs; ``probe=None`` probes only an installed runtime, not ``source``."""

    runtime: str = "sglang"
    python: str | None = None
    source: str | None = None
    packages: tuple[str, ...] = ()
    profile_file: str | None = None
    suppressions: str | None = None
    baseline: str | None = None
    probe: bool | None = None
    probe_platform: Platform | None = None
    probe_module_timeout: float = 60.0
    probe_timeout: float = 600.0
    strict: bool = False
    jobs: int | None = None
    fail_on: tuple[Severity, ...] = ("breaks",)

    @classmethod
    def create(cls, **values: Any) -> PortabilityOptions:
        """Validate values (runtime known, platform valid, limits positive) and build options."""
        fields: dict[str, Any] = {k: tuple(v) if k in ("packages", "fail_on") else v for k, v in values.items()}
        options = cls(**fields)
        bad = [s for s in options.fail_on if s not in SEVERITIES]
        if bad or not options.fail_on:
            raise ValueError(f"--fail-on takes severities from {list(SEVERITIES)}, got {list(options.fail_on)}; "
                             f"e.g. --fail-on breaks,option")
        PROFILES.get(options.runtime)  # raises with the known names
        if options.probe_platform is not None and options.probe_platform not in PLATFORMS:
            raise ValueError(
                f"--probe-platform must be one of {list(PLATFORMS)}, got {options.probe_platform!r}"
            )
        for name in ("probe_module_timeout", "probe_timeout"):
            if not getattr(options, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {getattr(options, name)!r}")
        if options.jobs is not None and options.jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {options.jobs}")
        return options

    def profile(self) -> RuntimeProfile:
        """The runtime's profile with any YAML overrides applied."""
        profile = PROFILES.get(self.runtime)
        if self.profile_file:
            try:
                data = yaml.safe_load(Path(self.profile_file).read_text()) or {}
            except OSError as exc:
                raise ValueError(f"cannot read profile {self.profile_file!r}: {exc.strerror}") from None
            profile = profile.with_overrides(data, source=self.profile_file)
        if self.packages:
            profile = dataclasses.replace(profile, packages=self.packages)
        return profile


def run_portability(options: PortabilityOptions) -> dict[str, Any]:
    """Run the whole check and return the JSON-able result (findings, counts, probe, version)."""
    profile = options.profile()
    python = options.python or sys.executable
    if options.source:
        runtime = RuntimeSource.from_directory(options.source, profile.top_package, profile.distribution)
    else:
        runtime = locate_runtime(python, profile.top_package, profile.distribution)
    profile, platform_packages = _with_platform_deps(profile, runtime.root)
    analysis = analyse_tree(runtime.root, profile.packages, profile, jobs=options.jobs, strict=options.strict)
    findings = list(analysis.findings)
    probe: ProbeResult | None = None
    expected: list[str] = []
    if options.probe if options.probe is not None else not options.source:
        probe = _probe(options, profile, runtime, python)
        found, expected = probe_findings(probe, runtime.root, analysis, profile, options.probe_platform)
        findings += apply_markers(found, analysis.markers)
    suppressions = SuppressionFile.load(options.suppressions) if options.suppressions else None
    if suppressions is not None:
        findings = suppressions.apply(findings)
    baseline = Baseline.load(options.baseline) if options.baseline else Baseline.empty()
    return build_result(
        runtime=options.runtime,
        version=runtime.version,
        source=str(runtime.root),
        packages=profile.packages,
        findings=findings,
        baseline=baseline,
        analysis={
            "files": analysis.files, "seconds": analysis.seconds, "strict": options.strict,
            "errors": list(analysis.errors), "warnings": list(analysis.warnings),
            "python": runtime.python_version,
            "platform_packages": platform_packages,
        },
        probe=probe.to_dict() if probe is not None else None,
        extra={"unused_suppressions": _unused(suppressions, findings), "probe_expected": expected},
        fail_on=options.fail_on,
    )


def _with_platform_deps(profile: RuntimeProfile, root: Path) -> tuple[RuntimeProfile, dict[str, Any]]:
    """The profile with what each platform installs (from the distribution's metadata) added, and a record of it.

    The hand-kept list wins where both speak.
    """
    deps = read_platform_deps(root, profile.distribution, profile.platform_extras, profile.platform_pyprojects)
    derived = deps.accelerator_packages(profile.distribution_imports, root)
    profile = dataclasses.replace(profile, accelerator_packages={**derived, **profile.accelerator_packages})
    return profile, {"read": deps.describe(),
                     "derived": {name: list(ordered(where)) for name, where in sorted(derived.items())}}


def _unused(suppressions: SuppressionFile | None, findings: list[Finding]) -> list[dict[str, str]]:
    return [dataclasses.asdict(e) for e in suppressions.unused(findings)] if suppressions else []


def blocked_packages(profile: RuntimeProfile, platform: Platform | None) -> tuple[str, ...]:
    """Accelerator packages to hide: all of them, or those ``platform`` lacks."""
    return tuple(sorted(
        name for name, where in profile.accelerator_packages.items()
        if platform is None or platform not in where
    ))


def _probe(options: PortabilityOptions, profile: RuntimeProfile, runtime: RuntimeSource, python: str) -> ProbeResult:
    modules = [m.module for m in source_modules(runtime.root, profile.packages)]
    config = ProbeConfig.create(
        python, modules, blocked_packages(profile, options.probe_platform),
        sys_path=(str(runtime.root),) if options.source else (),
        roots=(str(runtime.root / runtime.top_package),),
        module_timeout=options.probe_module_timeout,
        total_timeout=options.probe_timeout,
    )
    return run_probe(config)


def probe_findings(
    probe: ProbeResult,
    root: Path,
    analysis: Analysis,
    profile: RuntimeProfile,
    platform: Platform | None,
) -> tuple[list[Finding], list[str]]:
    """One finding per place that breaks imports, and the modules whose failure is expected.

    A failure counts only on platforms where the static import graph says the module
    gets imported: ``rocm_linear_utils`` failing without aiter is expected, since it
    is only imported under ``if _use_aiter:``.
    """
    groups: dict[tuple[str, int, str], list[tuple[ProbeFailure, PlatformSet]]] = collections.defaultdict(list)
    expected = []
    for failure in probe.failures:
        if failure.kind != "blocked-import":
            continue  # missing dependencies, the probe's own machinery, other errors: the environment
        found = profile.available_on(failure.blocked_module) if failure.blocked_module else None
        platforms = (ALL - found[1] if found else ALL) & analysis.import_reach.get(failure.module, ALL)
        platforms &= {platform} if platform is not None else ALL
        if not platforms:
            expected.append(failure.module)
            continue
        path, line = _location(failure, root)
        groups[(path, line, failure.blocked_module or failure.exception)].append((failure, platforms))
    return [_probe_finding(key, group, analysis) for key, group in sorted(groups.items())], expected


def _probe_finding(key: tuple[str, int, str], group: list[tuple[ProbeFailure, PlatformSet]],
                   analysis: Analysis) -> Finding:
    path, line, cause = key
    first = group[0][0]
    modules = [failure.module for failure, _ in group]
    examples = ", ".join(modules[:3]) + (", …" if len(modules) > 3 else "")
    platforms = frozenset().union(*(p for _, p in group))
    finding = Finding.create(
        "import-probe", path, line, cause, platforms,
        f"importing {len(modules)} module(s) fails here ({examples}): {first.exception}: {first.message}",
    )
    if analysis.ranker is None:
        return finding
    ranks = [analysis.ranker.at_import(failure.module, where) for failure, where in group]
    return finding.ranked(*min(ranks, key=lambda r: SEVERITIES.index(r[0])))


def _location(failure: ProbeFailure, root: Path) -> tuple[str, int]:
    """``path`` relative to the source root and line of the frame that raised."""
    frame = failure.origin or failure.last_frame
    if frame is None:
        return failure.module.replace(".", "/") + ".py", 0
    path, _, line = frame.rpartition(":")
    try:
        path = Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        pass
    return path, int(line) if line.isdigit() else 0

