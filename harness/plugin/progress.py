"""One line per cell as it finishes (and per boot when cells run in this process).

Boot lines come from the harness's runtime hooks: a boot that starts while another cell's
runtime is up in this process is one launched ahead of its cell. Under xdist the workers boot
and the controller prints, so only cell lines (from the reports) appear there.

Cells that never ran (every check skipped or N/A) are folded: one line per reason with a count,
written when the session finishes. Cells the preflight refused get no line: the preflight's own
line and the failures grouped by cause say it once.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from harness.config.matrix import Cell
from harness.errors import PREFLIGHT_REASON
from harness.plugin.recorder import RECORD_PROPERTY


class CellProgress:
    """Counts each cell's reported checks and prints a line when the last one is in."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.expected: dict[str, int] = {}
        self.seen: dict[str, Counter[str]] = {}
        self.started = time.monotonic()
        self.done = 0
        self.reasons: dict[str, Counter[tuple[str, str]]] = {}
        self.folded: Counter[tuple[str, str]] = Counter()
        self.up: set[str] = set()  # cells whose runtime is ready and not stopped yet, in this process

    def expect(self, cells: Iterable[str]) -> None:
        """Each occurrence of a cell id is one check expected for it."""
        self.expected = dict(Counter(cells))

    def pytest_runtest_logreport(self, report: Any) -> None:
        for key, value in report.user_properties:
            if key == RECORD_PROPERTY:
                self.record(value)

    def pytest_sessionfinish(self) -> None:
        for line in self.folded_lines():
            self.write(line)

    def folded_lines(self) -> list[str]:
        """``[harness] 36 cells skipped: no NPU device: ...``, most cells first."""
        return [f"[harness] {n:>3} cell{'s' if n != 1 else ''} {status}: {reason}"
                for (status, reason), n in self.folded.most_common()]

    def pytest_harness_runtime_booting(self, cell: Cell, attempt: int) -> None:
        """``booting  <cell>``, once per boot (not again when a busy port makes it retry)."""
        if attempt != 1:
            return
        ahead = " (ahead, while the current cell is checked)" if self.up - {cell.id} else ""
        self.write(f"[harness] booting  {cell.id}{ahead}")

    def pytest_harness_runtime_ready(self, runtime: Any) -> None:
        self.up.add(runtime.cell.id)

    def pytest_harness_runtime_stopped(self, cell: Cell) -> None:
        self.up.discard(cell.id)

    def record(self, data: Mapping[str, object]) -> None:
        cell = str(data["cell"])
        counts = self.seen.setdefault(cell, Counter())
        counts[str(data["status"])] += 1
        self.reasons.setdefault(cell, Counter())[(str(data["status"]), str(data.get("reason") or ""))] += 1
        if sum(counts.values()) == self.expected.get(cell):
            self.done += 1
            never_ran = _never_ran(self.reasons[cell])
            if never_ran is not None:
                self.folded[never_ran] += 1
            elif not all(r.startswith(PREFLIGHT_REASON) for _, r in self.reasons[cell]):
                self.write(self._line(cell, counts, data))

    def _line(self, cell: str, counts: Counter[str], data: Mapping[str, object]) -> str:
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        boot = data.get("boot_s")
        boot_s = f" boot {float(boot):.1f}s" if isinstance(boot, (int, float)) else ""
        elapsed = time.monotonic() - self.started
        return f"[harness] {self.done:>3}/{len(self.expected)} done  {cell:<44} {summary}{boot_s}  (t+{elapsed:.0f}s)"


def _never_ran(reasons: Counter[tuple[str, str]]) -> tuple[str, str] | None:
    """(status, reason) to fold a cell under when none of its checks ran, else None.

    A cell whose checks are skipped twice for "no CUDA device" and N/A once is folded under
    ``("skipped", "no CUDA device ...")``: its most common reason.
    """
    if all(s in ("skipped", "na") for s, _ in reasons):
        (status, reason), _ = reasons.most_common(1)[0]
        return ("N/A" if status == "na" else status), reason
    return None
