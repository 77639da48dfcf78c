"""Coverage: what ran against what was planned, per device, runtime and model (from records only).

A cell is one of:

- ``ran``       at least one check executed on a real device (pass, fail or error, not simulated)
- ``simulated`` it executed, but only on a simulated device (never counts towards sign-off)
- ``skipped``   nothing executed (device or checkpoint absent, a skip mark, or the runtime failed its
                preflight: such a cell is red, but it never ran)
- ``na``        every check is N/A: the cell means nothing (not planned)

"Planned" is every cell that is not N/A. The verdict line reads e.g.
``ran: cpu 8/16 · cuda 0/24 · npu 0/24 cells`` so a GO on the CPU is never mistaken for NPU sign-off.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, final

from harness.config.matrix import DEVICES
from harness.errors import PREFLIGHT_REASON
from harness.results import ResultRecord

CellState = Literal["ran", "simulated", "skipped", "na"]
AXES = ("device", "runtime", "model")
NEVER_RAN = PREFLIGHT_REASON  # an error reason of a cell whose runtime could not even be started


@final
@dataclasses.dataclass(frozen=True)
class AxisCount:
    """Cells of one value of an axis (e.g. device ``npu``): planned, ran, simulated, and why the rest did not."""

    axis: str
    value: str
    planned: int
    ran: int
    simulated: int
    passed: int
    skip_reasons: tuple[tuple[str, int], ...] = ()  # (reason, cells), most frequent first

    @property
    def complete(self) -> bool:
        return self.planned > 0 and self.ran == self.planned

    @property
    def label(self) -> str:
        """``npu 0/24`` (``+3 simulated`` when some ran only on simulated devices)."""
        sim = f" (+{self.simulated} simulated)" if self.simulated else ""
        return f"{self.value} {self.ran}/{self.planned}{sim}"


@final
@dataclasses.dataclass(frozen=True)
class Coverage:
    """Cells planned and ran, overall and per axis value."""

    planned: int
    ran: int
    simulated: int
    passed: int
    by_axis: Mapping[str, tuple[AxisCount, ...]]
    states: Mapping[str, CellState]

    @classmethod
    def from_records(cls, records: Iterable[ResultRecord]) -> Coverage:
        by_cell: dict[str, list[ResultRecord]] = {}
        for r in records:
            by_cell.setdefault(r.cell, []).append(r)
        states = {cell: cell_state(recs) for cell, recs in by_cell.items()}
        passed = {cell for cell, recs in by_cell.items() if states[cell] == "ran" and _all_passed(recs)}
        by_axis = {axis: _axis_counts(axis, by_cell, states, passed) for axis in AXES}
        count = Counter(states.values())
        return cls(len(states) - count["na"], count["ran"], count["simulated"], len(passed), by_axis, states)

    def axis(self, name: str) -> tuple[AxisCount, ...]:
        return tuple(self.by_axis.get(name, ()))

    def get(self, axis: str, value: str) -> AxisCount | None:
        return next((a for a in self.axis(axis) if a.value == value), None)

    @property
    def complete(self) -> bool:
        """Every planned cell ran on a real device."""
        return self.planned > 0 and self.ran == self.planned

    @property
    def ran_devices(self) -> tuple[str, ...]:
        return tuple(a.value for a in self.axis("device") if a.ran)

    def line(self) -> str:
        """``ran 8 of 64 planned cells: cpu 8/16 · cuda 0/24 · npu 0/24``."""
        devices = " · ".join(a.label for a in self.axis("device") if a.planned)
        return f"ran {self.ran} of {self.planned} planned cells: {devices}" if devices else "no cell planned"

    def scope(self) -> str:
        """The devices where cells ran: ``cpu`` or ``cpu, npu`` (``nothing`` when none ran)."""
        return ", ".join(self.ran_devices) or "nothing"


def cell_state(records: Sequence[ResultRecord]) -> CellState:
    """The state of one cell from all of its records (see the module docstring)."""
    executed = [r for r in records if r.status in ("pass", "fail", "error") and not r.reason.startswith(NEVER_RAN)]
    if any(not r.simulated for r in executed):
        return "ran"
    if executed:
        return "simulated"
    if records and all(r.status == "na" for r in records):
        return "na"
    return "skipped"


def _all_passed(records: Sequence[ResultRecord]) -> bool:
    return all(r.status in ("pass", "na", "skipped") for r in records)


def _axis_counts(axis: str, by_cell: Mapping[str, Sequence[ResultRecord]], states: Mapping[str, CellState],
                 passed: set[str]) -> tuple[AxisCount, ...]:
    groups: dict[str, list[str]] = {}
    for cell, recs in by_cell.items():
        groups.setdefault(str(getattr(recs[0], axis)), []).append(cell)
    out = []
    for value, cells in groups.items():
        planned = [c for c in cells if states[c] != "na"]
        reasons = Counter(_skip_reason(by_cell[c]) for c in planned if states[c] == "skipped")
        out.append(AxisCount(axis, value, len(planned), sum(states[c] == "ran" for c in planned),
                             sum(states[c] == "simulated" for c in planned), sum(c in passed for c in planned),
                             tuple(reasons.most_common())))
    return tuple(sorted(out, key=lambda a: _order(axis, a.value)))


def _skip_reason(records: Sequence[ResultRecord]) -> str:
    """The reason a skipped cell did not run (its first skipped or preflight record's)."""
    return next((r.reason for r in records if r.status == "skipped" or r.reason.startswith(NEVER_RAN)), "") or "skipped"


def _order(axis: str, value: str) -> tuple[int, str]:
    if axis == "device" and value in DEVICES:
        return (DEVICES.index(value), value)
    return (len(DEVICES), value)
