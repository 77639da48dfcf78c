"""Suppressions: ``# harness: portable-ok(reason)`` markers and a YAML file; both need a reason."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.portability.finding import RULES, Finding

MARKER = re.compile(r"#\s*harness:\s*portable-ok\((?P<reason>[^)]*)\)")
_FIELDS = ("rule", "path", "symbol", "reason")


def scan_markers(text: str) -> tuple[dict[int, str], list[int]]:
    """Marker reasons by line, and lines whose marker has no reason.

    A marker on a line of its own covers the next line as well:

        # harness: portable-ok(imported only by the CUDA loader)
        from flashinfer import top_k   # <- covered
    """
    markers: dict[int, str] = {}
    empty: list[int] = []
    if "portable-ok" not in text:
        return markers, empty
    for number, line in enumerate(text.splitlines(), start=1):
        match = MARKER.search(line)
        if match is None:
            continue
        reason = match.group("reason").strip()
        if not reason:
            empty.append(number)
            continue
        markers[number] = reason
        if line.lstrip().startswith("#"):
            markers.setdefault(number + 1, reason)
    return markers, empty


def apply_markers(findings: Iterable[Finding], markers: Mapping[str, Mapping[int, str]]) -> list[Finding]:
    """Mark findings whose line carries a ``portable-ok`` marker as suppressed."""
    result = []
    for finding in findings:
        reason = markers.get(finding.path, {}).get(finding.line)
        result.append(finding.suppress(f"inline: {reason}") if reason and not finding.suppressed else finding)
    return result


@dataclasses.dataclass(frozen=True)
class Suppression:
    """One suppression-file entry; ``path`` and ``symbol`` are fnmatch globs."""

    rule: str
    path: str
    symbol: str
    reason: str

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> Suppression:
        """Validate one YAML entry."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: a suppression must be a mapping with {list(_FIELDS)}, got {data!r}")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed keys are {list(_FIELDS)}")
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"{where}: 'reason' is required and must say why the finding is safe, got {reason!r}")
        rule = str(data.get("rule", "*"))
        if rule != "*" and rule not in RULES:
            raise ValueError(f"{where}: unknown rule {rule!r}; use one of {list(RULES)} or '*'")
        return cls(rule, str(data.get("path", "*")), str(data.get("symbol", "*")), reason.strip())

    def matches(self, finding: Finding) -> bool:
        """Whether this entry covers ``finding``."""
        return (
            self.rule in ("*", finding.rule)
            and fnmatch.fnmatchcase(finding.path, self.path)
            and fnmatch.fnmatchcase(finding.symbol, self.symbol)
        )


@dataclasses.dataclass(frozen=True)
class SuppressionFile:
    """Entries from a suppression YAML file: a list, or a mapping with a ``suppressions`` list."""

    source: str
    entries: tuple[Suppression, ...]

    @classmethod
    def load(cls, path: str | Path) -> SuppressionFile:
        """Read and validate a suppression file."""
        try:
            data = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise ValueError(f"cannot read suppression file {str(path)!r}: {exc.strerror}; check --suppressions") from None
        return cls.from_data(data, str(path))

    @classmethod
    def from_data(cls, data: Any, source: str) -> SuppressionFile:
        """Validate parsed YAML."""
        if isinstance(data, Mapping):
            data = data.get("suppressions", [])
        if data is None:
            data = []
        if not isinstance(data, list):
            raise ValueError(f"{source}: expected a list of suppressions, got {type(data).__name__}")
        entries = tuple(Suppression.from_mapping(item, f"{source}[{i}]") for i, item in enumerate(data))
        return cls(source, entries)

    def apply(self, findings: Iterable[Finding]) -> list[Finding]:
        """Mark findings matched by an entry as suppressed, keeping them in the list."""
        result = []
        for finding in findings:
            entry = next((e for e in self.entries if e.matches(finding)), None)
            if entry is not None and not finding.suppressed:
                finding = finding.suppress(f"{self.source}: {entry.reason}")
            result.append(finding)
        return result

    def unused(self, findings: Iterable[Finding]) -> list[Suppression]:
        """Entries that match no finding (candidates for deletion)."""
        listed = list(findings)
        return [e for e in self.entries if not any(e.matches(f) for f in listed)]
