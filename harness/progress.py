"""One line per cell as it finishes (and per boot when cells run in this process)."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from harness.recorder import RECORD_PROPERTY


class CellProgress:
    """Counts each cell's reported checks and prints a line when the last one is in."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.expected: dict[str, int] = {}
        self.seen: dict[str, Counter[str]] = {}
        self.started = time.monotonic()
        self.done = 0

    def expect(self, cells: Iterable[str]) -> None:
        """Each occurrence of a cell id is one check expected for it."""
        self.expected = dict(Counter(cells))

    def pytest_runtest_logreport(self, report: Any) -> None:
        for key, value in report.user_properties:
            if key == RECORD_PROPERTY:
                self.record(value)

    def booting(self, cell: str) -> None:
        self.write(f"[harness] booting  {cell}")

    def booting_ahead(self, cell: str) -> None:
        self.write(f"[harness] booting  {cell} (ahead, while the current cell is checked)")

    def record(self, data: Mapping[str, object]) -> None:
        cell = str(data["cell"])
        counts = self.seen.setdefault(cell, Counter())
        counts[str(data["status"])] += 1
        if sum(counts.values()) == self.expected.get(cell):
            self.done += 1
            self.write(self._line(cell, counts, data))

    def _line(self, cell: str, counts: Counter[str], data: Mapping[str, object]) -> str:
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        boot = data.get("boot_s")
        boot_s = f" boot {float(boot):.1f}s" if isinstance(boot, (int, float)) else ""
        elapsed = time.monotonic() - self.started
        return f"[harness] {self.done:>3}/{len(self.expected)} done  {cell:<44} {summary}{boot_s}  (t+{elapsed:.0f}s)"
