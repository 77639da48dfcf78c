"""The report's portability section: ``<run dir>/portability.json`` read into display values.

The file comes from ``suites/test_portability.py`` (``{"schema", "run_id", "runtimes": {name: result}}``)
or from ``harness portability --json`` (one result record); both read the same. A file of another
run (its ``run_id`` differs from the manifest's) is not shown as this run's, and a malformed one
never breaks the report: the section says what was wrong instead.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, final

from harness.bisect.command import portability_command
from harness.reports.store import read_manifest
from harness.results import write_json_atomic

PORTABILITY_FILE = "portability.json"  # harness.portability.runfile.RUN_FILE
RUN_SCHEMA = "harness.portability.run/1"
MAX_LISTED = 200  # new findings listed per runtime; the rest are counted
SEVERITIES = ("breaks", "option", "latent")  # harness.portability.finding.SEVERITIES, worst first
Status = Literal["pass", "fail", "skipped"]


@final
@dataclasses.dataclass(frozen=True)
class PortabilityFinding:
    """One new finding: ``sglang/srt/layers/x.py:12``, its rule, symbol, platforms and the fix."""

    location: str
    rule: str
    symbol: str
    platforms: str
    when: str
    hint: str
    severity: str = "breaks"
    reach: str = ""
    failing: bool = True
    bisect: str = ""  # the `harness bisect` command that finds the release that brought it (when the baseline is older)


@final
@dataclasses.dataclass(frozen=True)
class RuntimePortability:
    """One runtime version's counts and its new findings."""

    runtime: str
    version: str
    status: Status
    new: int
    baselined: int
    suppressed: int
    findings: tuple[PortabilityFinding, ...]
    omitted: int
    baseline: str
    stale: int
    analysed: str
    problems: tuple[str, ...]
    skipped: str = ""
    failing: int = 0  # new findings of a severity that fails the check (breaks, unless promoted)
    severities: tuple[tuple[str, int], ...] = ()  # unsuppressed findings per severity, worst first

    @property
    def anchor(self) -> str:
        return f"portability-{self.runtime}"


@final
@dataclasses.dataclass(frozen=True)
class PortabilitySection:
    runtimes: tuple[RuntimePortability, ...]
    note: str = ""

    @property
    def new(self) -> int:
        return sum(r.new for r in self.runtimes)

    @property
    def failing(self) -> int:
        """New findings that fail the check (by default those ranked *breaks*)."""
        return sum(r.failing for r in self.runtimes)


def read_portability(run_dir: Path, run_id: str) -> PortabilitySection | None:
    """The section for ``run_dir``, or None when the run has no ``portability.json``."""
    path = run_dir / PORTABILITY_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return PortabilitySection((), f"{PORTABILITY_FILE} could not be read ({exc}); re-run the portability check")
    return portability_section(data, run_id)


def portability_section(data: Any, run_id: str) -> PortabilitySection:
    """Display values from the file's content (no I/O)."""
    if not isinstance(data, Mapping):
        return PortabilitySection((), f"{PORTABILITY_FILE} is not a JSON object; re-run the portability check")
    if "runtimes" not in data:  # one record written by `harness portability --json`
        data = {"runtimes": {str(data.get("runtime", "?")): data}}
    if data.get("run_id") not in (None, run_id):
        return PortabilitySection((), f"{PORTABILITY_FILE} belongs to run {data['run_id']}, not to this run; "
                                      "it is not shown (re-run the portability tests to check this run)")
    entries = data["runtimes"] if isinstance(data["runtimes"], Mapping) else {}
    runtimes = tuple(_runtime(str(name), entry) for name, entry in sorted(entries.items()) if isinstance(entry, Mapping))
    return PortabilitySection(runtimes, "" if runtimes else f"{PORTABILITY_FILE} lists no runtime")


def _runtime(name: str, entry: Mapping[str, Any]) -> RuntimePortability:
    version = str(entry.get("version") or "version unknown")
    if entry.get("skipped"):
        return RuntimePortability(name, version, "skipped", 0, 0, 0, (), 0, "", 0, "", (), str(entry["skipped"]))
    findings = [f for f in entry.get("findings") or () if isinstance(f, Mapping)]
    new = sorted((f for f in findings if f.get("status") == "new"), key=_worst_first)
    failing = sum(1 for f in new if f.get("failing", True))
    severities = tuple((s, sum(1 for f in findings if f.get("status") != "suppressed" and _severity(f) == s))
                       for s in SEVERITIES)
    counts = {s: sum(1 for f in findings if f.get("status") == s) for s in ("new", "baselined", "suppressed")}
    analysis = _mapping(entry.get("analysis")) or {}
    baseline = _mapping(entry.get("baseline")) or {}
    probe = _mapping(entry.get("probe"))
    analysed = f"{analysis.get('files', '?')} files analysed" + (
        f"; import probe: {probe.get('imported', '?')}/{probe.get('modules', '?')} modules imported" if probe else "; no import probe")
    return RuntimePortability(
        name, version, "fail" if failing else "pass", counts["new"], counts["baselined"], counts["suppressed"],
        tuple(_finding(f, name, _baseline_version(name, baseline), entry.get("version")) for f in new[:MAX_LISTED]),
        max(0, len(new) - MAX_LISTED),
        str(baseline.get("note") or "not recorded"),
        len(entry.get("stale_baseline") or ()), analysed, tuple(map(str, analysis.get("errors") or ())),
        failing=failing, severities=severities,
    )


def _severity(f: Mapping[str, Any]) -> str:
    severity = str(f.get("severity") or "breaks")  # records written before severities were all *breaks*
    return severity if severity in SEVERITIES else "breaks"


def _worst_first(f: Mapping[str, Any]) -> tuple[int, str, int]:
    line = f.get("line")
    return SEVERITIES.index(_severity(f)), str(f.get("path", "")), line if isinstance(line, int) else 0


def _finding(f: Mapping[str, Any], runtime: str, good: str | None, bad: Any) -> PortabilityFinding:
    platforms = f.get("platforms")
    key, bad_version = f.get("key"), str(bad) if bad else None
    command = portability_command(str(key), runtime, good, bad_version) if key and good and bad_version != good else ""
    return PortabilityFinding(
        f"{f.get('path', '?')}:{f.get('line', '?')}", str(f.get("rule", "")), str(f.get("symbol", "")),
        ", ".join(map(str, platforms)) if isinstance(platforms, list) else str(platforms or ""),
        str(f.get("when", "")), str(f.get("hint", "")),
        _severity(f), str(f.get("reach") or ""), bool(f.get("failing", True)), command,
    )


def _mapping(value: Any) -> Mapping[str, Any] | None:
    """``value`` when a record's field holds a mapping, else None (an old or hand-edited record)."""
    return value if isinstance(value, Mapping) else None


def _baseline_version(runtime: str, baseline: Mapping[str, Any]) -> str | None:
    """The version a shipped-style baseline file is of: ``sglang-0.5.23.json`` -> ``0.5.23``."""
    name = Path(str(baseline.get("path") or "")).name
    prefix = f"{runtime}-"
    return name[len(prefix):-len(".json")] if name.startswith(prefix) and name.endswith(".json") else None


def merge_portability(out: Path, shard_dirs: Sequence[Path], run_id: str) -> None:
    """Give the merged run the shards' portability results (the first shard that checked a runtime wins)."""
    runtimes: dict[str, Any] = {}
    for shard in shard_dirs:
        try:
            data = json.loads((shard / PORTABILITY_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, Mapping) or data.get("run_id") not in (None, read_manifest(shard).run_id):
            continue  # not this shard's run
        found = data.get("runtimes", {str(data.get("runtime", "?")): data})
        for name, entry in (found.items() if isinstance(found, Mapping) else ()):
            if isinstance(entry, Mapping) and (name not in runtimes or (runtimes[name].get("skipped") and not entry.get("skipped"))):
                runtimes[name] = entry
    if runtimes:
        write_json_atomic(out / PORTABILITY_FILE, {"schema": RUN_SCHEMA, "run_id": run_id, "runtimes": runtimes})
