"""Waivers: a known problem on matching cells that may ship until a date (YAML; see examples/waivers.yaml).

    schema: 1
    waivers:
      - cells: "sglang-npu-glm4-moe-lite-*"   # fnmatch pattern(s) on cell ids
        check: weight_parity                  # a check name, or "*"
        reason: fused MoE experts are transposed on load by torch_npu 2.5
        issue: https://github.com/example/llm-harness/issues/42
        expires: 2026-12-31                   # valid through this day; after it the failure blocks again
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, final

from harness.reports.yamlfile import SpecFile, check_keys, load_spec, string_list

WAIVERS_SCHEMA = 1
EXAMPLE = Path(__file__).resolve().parent / "examples" / "waivers.yaml"
_ISSUE = re.compile(r"^(https?://\S+|[A-Za-z][A-Za-z0-9_.-]*-\d+|[\w.-]+/[\w.-]+#\d+|#\d+)$")


@final
@dataclasses.dataclass(frozen=True)
class Waiver:
    """Permission to ship with ``check`` failing on ``cells`` until ``expires`` (inclusive)."""

    cells: tuple[str, ...]
    check: str
    reason: str
    issue: str
    expires: dt.date
    line: int | None = None
    source: str = ""

    def matches(self, cell: str, check: str) -> bool:
        return fnmatch.fnmatchcase(check, self.check) and any(fnmatch.fnmatchcase(cell, p) for p in self.cells)

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    @property
    def label(self) -> str:
        """How a report names the waiver: ``waivers.yaml:7 (*-npu-* / weight_parity)``."""
        where = f"{Path(self.source).name}:{self.line}" if self.source else "waiver"
        return f"{where} ({', '.join(self.cells)} / {self.check})"


def load_waivers(path: Path) -> tuple[Waiver, ...]:
    """Load and validate a waivers file; any mistake raises SpecFileError naming file, line, fix."""
    spec = load_spec(path, "waivers", str(EXAMPLE))
    data = spec.data
    check_keys(spec, (), data, {"waivers"}, {"schema"})
    if data.get("schema", WAIVERS_SCHEMA) != WAIVERS_SCHEMA:
        raise spec.error(("schema",), f"unsupported schema {data.get('schema')!r} (this harness reads {WAIVERS_SCHEMA})",
                         f"write schema: {WAIVERS_SCHEMA}, or upgrade the harness")
    items = data["waivers"]
    if items is None:
        return ()
    if not isinstance(items, list):
        raise spec.error(("waivers",), f"expected a list of waivers, got {items!r}", f"see {EXAMPLE}")
    return tuple(_waiver(spec, i, item) for i, item in enumerate(items))


def _waiver(spec: SpecFile, i: int, data: Any) -> Waiver:
    where = ("waivers", i)
    if not isinstance(data, Mapping):
        raise spec.error(where, f"expected a mapping, got {data!r}", f"see {EXAMPLE}")
    check_keys(spec, where, data, {"cells", "check", "reason", "issue", "expires"}, set())
    check = data["check"]
    if not isinstance(check, str) or not check.strip():
        raise spec.error((*where, "check"), f"expected a check name or '*', got {check!r}", "write check: weight_parity")
    reason = _text(spec, (*where, "reason"), data["reason"], "say why shipping with it is acceptable")
    issue = _text(spec, (*where, "issue"), data["issue"], "link the tracking issue")
    if not _ISSUE.match(issue):
        raise spec.error((*where, "issue"), f"expected an issue link, got {issue!r}",
                         "write a URL (https://github.com/org/repo/issues/42), org/repo#42 or PROJ-123")
    return Waiver(string_list(spec, (*where, "cells"), data["cells"], "cells: '*-npu-*'"), check.strip(), reason, issue,
                  _date(spec, (*where, "expires"), data["expires"]), spec.line(*where), str(spec.path))


def _text(spec: SpecFile, where: tuple[str | int, ...], value: Any, fix: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise spec.error(where, f"expected non-empty text, got {value!r}", fix)
    return value.strip()


def _date(spec: SpecFile, where: tuple[str | int, ...], value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise spec.error(where, f"expected a date YYYY-MM-DD, got {value!r}", "write e.g. expires: 2026-12-31") from None
