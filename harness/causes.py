"""Root causes of failed cells: read from a runtime log, grouped over result records.

Pure logic (no pytest, no I/O): the terminal summary and the HTML report share it.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any, final

FAILED = ("error", "fail")
CAUSE_CHARS = 300  # a cause longer than this is cut (a whole config dumped into an exception message)
# The last line of a Python traceback: ``ModuleNotFoundError: No module named 'x'``, ``torch.OutOfMemoryError: ...``.
_EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Timeout)(?::\s.*)?$")
# ``python: Error while finding module specification for 'sglang.launch_server' (ModuleNotFoundError: ...)``
_RUNPY_LINE = re.compile(r"\((?P<exc>(?:[A-Za-z_]\w*\.)*[A-Z]\w*Error: .*)\)\s*$")


def root_cause(log_text: str) -> str | None:
    """The last exception line of a runtime log, or None when it has none.

    >>> root_cause("Traceback (most recent call last):\\n  ...\\nModuleNotFoundError: No module named 'vllm'\\n")
    "ModuleNotFoundError: No module named 'vllm'"
    >>> root_cause("/v/bin/python: Error while finding module specification for 'sglang.launch_server' "
    ...            "(ModuleNotFoundError: No module named 'sglang')")
    "ModuleNotFoundError: No module named 'sglang'"
    """
    for line in reversed(log_text.splitlines()):
        line = line.strip()
        runpy = _RUNPY_LINE.search(line)
        if runpy:
            return _cut(runpy.group("exc"))
        if _EXCEPTION_LINE.match(line):
            return _cut(line)
    return None


def _cut(text: str) -> str:
    return text if len(text) <= CAUSE_CHARS else text[:CAUSE_CHARS - 1] + "…"


@final
@dataclasses.dataclass(frozen=True)
class CauseGroup:
    """Cells whose failed checks carry the same reason."""

    cause: str
    cells: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.cells)


def group_failures(records: Iterable[Mapping[str, Any] | Any]) -> list[CauseGroup]:
    """Failed and errored records grouped by reason, most cells first; each cell once per cause.

    Records are ResultRecords or their mappings. Three checks of cell ``a`` and one of cell ``b``
    erroring with ``boot-crash: X`` give ``[CauseGroup("boot-crash: X", ("a", "b"))]``. Only the last
    record of a (cell, check) counts: a check that passed when its cell was booted again is not a failure.
    """
    last = {(_field(rec, "cell"), _field(rec, "check")): rec for rec in records}
    cells: dict[str, dict[str, None]] = {}
    for rec in last.values():
        if _field(rec, "status") in FAILED:
            cause = str(_field(rec, "reason") or "(no reason given)")
            if _field(rec, "flake"):  # the cell was booted again and failed again
                cause += f" ({_field(rec, 'flake')}: failed on both boots)"
            cells.setdefault(cause, {})[str(_field(rec, "cell"))] = None
    groups = [CauseGroup(cause, tuple(ids)) for cause, ids in cells.items()]
    return sorted(groups, key=lambda g: -g.count)  # stable: equal counts keep the order they first failed in


def format_groups(groups: list[CauseGroup], max_groups: int = 5, max_cells: int = 3) -> list[str]:
    """A few terminal lines: ``8 cells: boot-crash: X — a, b, c (+5)``, then how many causes were left out."""
    lines = []
    for g in groups[:max_groups]:
        shown = ", ".join(g.cells[:max_cells]) + (f" (+{g.count - max_cells})" if g.count > max_cells else "")
        lines.append(f"{g.count} cell{'s' if g.count != 1 else ''}: {g.cause} — {shown}")
    if len(groups) > max_groups:
        rest = groups[max_groups:]
        lines.append(f"… and {len(rest)} more cause(s) in {sum(g.count for g in rest)} cell(s): see the report")
    return lines


def _field(rec: Mapping[str, Any] | Any, name: str) -> Any:
    return rec.get(name) if isinstance(rec, Mapping) else getattr(rec, name, None)
