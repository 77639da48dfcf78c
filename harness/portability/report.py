"""The portability result as a JSON-able record, and its plain-text rendering (reads the record only)."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from harness.portability.baseline import Baseline
from harness.portability.finding import RULES, SEVERITIES, Finding

SCHEMA = "harness.portability/1"
Status = Literal["new", "baselined", "suppressed"]


def status_of(finding: Finding, baseline: Baseline) -> Status:
    """Suppressed wins over baselined; anything else is new."""
    if finding.suppressed:
        return "suppressed"
    return "baselined" if finding in baseline else "new"


def build_result(
    *,
    runtime: str,
    version: str | None,
    source: str,
    packages: Sequence[str],
    findings: Iterable[Finding],
    baseline: Baseline,
    analysis: Mapping[str, Any],
    probe: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    fail_on: Sequence[str] = ("breaks",),
) -> dict[str, Any]:
    """Assemble the record a report section or ``--json`` consumes.

    A finding fails the check when it is new and its severity is in ``fail_on`` (``failing``).
    """
    listed = list(findings)
    records = [{**f.to_dict(), "status": status_of(f, baseline)} for f in listed]
    for record in records:
        record["failing"] = record["status"] == "new" and record["severity"] in fail_on
    return {
        "schema": SCHEMA,
        "runtime": runtime,
        "version": version,
        "source": source,
        "packages": list(packages),
        "analysis": dict(analysis),
        "counts": _counts(records),
        "fail_on": list(fail_on),
        "findings": records,
        "probe": dict(probe) if probe is not None else None,
        "stale_baseline": baseline.stale(listed),
        **(extra or {}),
    }


def _counts(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Findings by status, rule and severity (suppressed ones only in their own count)."""
    statuses = collections.Counter(r["status"] for r in records)
    by_rule = collections.Counter(r["rule"] for r in records if r["status"] != "suppressed")
    by_severity = collections.Counter(r["severity"] for r in records if r["status"] != "suppressed")
    new_by_severity = collections.Counter(r["severity"] for r in records if r["status"] == "new")
    return {
        "findings": len(records),
        "new": statuses["new"],
        "baselined": statuses["baselined"],
        "suppressed": statuses["suppressed"],
        "keys": len({r["key"] for r in records}),
        "by_rule": {rule: by_rule[rule] for rule in RULES if by_rule[rule]},
        "by_severity": {severity: by_severity[severity] for severity in SEVERITIES},
        "new_by_severity": {severity: new_by_severity[severity] for severity in SEVERITIES},
        "failing": sum(1 for r in records if r["failing"]),
    }


def render_text(result: Mapping[str, Any]) -> str:
    """Findings grouped by file, repeated reads folded into one line, then a summary."""
    lines = [f"portability: {result['runtime']} {result.get('version') or '(version unknown)'}"
             f" — {result['source']}"]
    by_file: dict[str, list[Mapping[str, Any]]] = collections.defaultdict(list)
    for record in result["findings"]:
        by_file[record["path"]].append(record)
    for path in sorted(by_file):
        lines.append("")
        lines.append(path)
        lines.extend(_file_lines(by_file[path]))
    lines.append("")
    lines.extend(_probe_lines(result.get("probe"), result.get("probe_expected", [])))
    lines.extend(f"warning: {w}" for w in result["analysis"].get("warnings", []))
    lines.extend(f"error: {e}" for e in result["analysis"].get("errors", []))
    lines.append(_summary(result))
    return "\n".join(lines)


def _file_lines(records: list[Mapping[str, Any]]) -> list[str]:
    grouped: dict[tuple[str, str, str, str], list[Mapping[str, Any]]] = {}
    for record in sorted(records, key=lambda r: r["line"]):
        key = (record["rule"], record["symbol"], record["status"], record.get("severity", "breaks"))
        grouped.setdefault(key, []).append(record)
    out = []
    for (rule, symbol, status, severity), same in grouped.items():
        first = same[0]
        where = ",".join(str(r["line"]) for r in same[:5]) + (",…" if len(same) > 5 else "")
        platforms = "/".join(sorted({p for r in same for p in r["platforms"]}, key=_order))
        mark = "" if status == "new" else f"  ({status}"
        mark += f": {first['suppressed']})" if status == "suppressed" else (")" if mark else "")
        out.append(f"  {where:>9}  {severity:<6}  {rule:<21}  {symbol}  [{platforms}] at {first['when']} "
                   f"time{mark}")
        out.append(f"  {'':>9}  {first['hint']}")
        if first.get("reach"):
            out.append(f"  {'':>9}  reach: {first['reach']}")
    return out


def _order(platform: str) -> int:
    return ["cuda", "rocm", "npu", "xpu", "cpu"].index(platform)


def _probe_lines(probe: Mapping[str, Any] | None, expected: Sequence[str]) -> list[str]:
    if not probe:
        return []
    kinds = collections.Counter(f["kind"] for f in probe["failures"])
    detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "no failures"
    lines = [f"probe: {probe['imported']}/{probe['modules']} modules imported with "
             f"{len(probe['blocked'])} accelerator packages hidden ({detail}; "
             f"{len(probe['skipped'])} skipped) in {probe['seconds']:.1f}s"]
    if expected:
        lines.append(f"probe: {len(expected)} failure(s) are expected: those modules are only "
                     f"imported on platforms that have the package (e.g. {expected[0]})")
    missing = collections.Counter(f["missing_module"] for f in probe["failures"] if f["kind"] == "missing-module")
    for module, count in missing.most_common(3):
        lines.append(f"probe: {count} module(s) need {module!r}, which the runtime python lacks "
                     f"(an environment problem, not a portability finding)")
    for kind, why in _NOT_FINDINGS.items():
        same = [f for f in probe["failures"] if f["kind"] == kind]
        if same:
            lines.append(f"probe: {len(same)} module(s) failed {why}, e.g. {same[0]['module']}: "
                         f"{same[0]['exception']}: {same[0]['message'][:120]} (not portability findings)")
    return lines


_NOT_FINDINGS = {
    "probe-machinery": "in the import system's or the probe's own bookkeeping",
    "error": "with an error that is not an accelerator-only import",
    "timeout": "to import within the per-module limit",
    "crash": "by killing the interpreter",
}


def _summary(result: Mapping[str, Any]) -> str:
    counts = result["counts"]
    analysis = result["analysis"]
    severities = counts.get("by_severity", {})
    ranked = ", ".join(f"{severities.get(s, 0)} {s}" for s in SEVERITIES)
    fail_on = "/".join(result.get("fail_on", ("breaks",)))
    return (
        f"{counts['findings']} finding(s): {counts['new']} new, {counts['baselined']} baselined, "
        f"{counts['suppressed']} suppressed; by severity: {ranked}; {counts.get('failing', counts['new'])} "
        f"fail the check (new and {fail_on}) — {analysis.get('files', 0)} files analysed in "
        f"{analysis.get('seconds', 0):.1f}s"
    )
