"""The first screen's data: a heatmap of model × device·offload, and cells that did not run folded by reason.

A heatmap square is every cell of one model on one (runtime,) device and offload mode (dtypes and
tp sizes together); its status is the worst over those cells' checks, worst first in
``HEAT_ORDER``, with ``simulated`` for cells that ran only on simulated devices. Columns carry the
runtime only when the run has more than one. Linear in the rows: no per-cell heavy work.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import final

from harness.config.matrix import DEVICES
from harness.reports.coverage import CellState

HEAT_ORDER = ("error", "fail", "pass", "simulated", "skipped", "na", "absent")  # worst first


@final
@dataclasses.dataclass(frozen=True)
class HeatSquare:
    """One model on one device·offload: the worst status, the cell its link opens, a tooltip."""

    status: str
    anchor: str
    title: str
    cells: int = 0
    mixed: bool = False  # some of its cells ran and some did not
    new_failure: bool = False


@final
@dataclasses.dataclass(frozen=True)
class HeatRow:
    model: str
    squares: tuple[HeatSquare, ...]
    ran: int
    planned: int


@final
@dataclasses.dataclass(frozen=True)
class Heatmap:
    """Rows are models, columns (runtime,) device·offload; ``groups`` are the header's (label, colspan)."""

    groups: tuple[tuple[str, int], ...]
    columns: tuple[str, ...]
    rows: tuple[HeatRow, ...]


@final
@dataclasses.dataclass(frozen=True)
class Folded:
    """Cells that did not run, for one reason: ``3 skipped — no CUDA device: …``."""

    status: str
    reason: str
    cells: tuple[str, ...]


@final
@dataclasses.dataclass(frozen=True)
class RowLike:
    """What the overview needs of a grid row (kept apart so the grid can stay as it is)."""

    cell: str
    anchor: str
    runtime: str
    device: str
    offload: str
    status: str
    reason: str
    new_failure: bool


def heatmap(rows_by_model: Mapping[str, Sequence[RowLike]], states: Mapping[str, CellState]) -> Heatmap:
    """The heatmap of every model's rows; ``states`` is the coverage state of each cell."""
    multi = len({r.runtime for rows in rows_by_model.values() for r in rows}) > 1
    keys = sorted({_column(r, multi) for rows in rows_by_model.values() for r in rows}, key=_column_order)
    groups = Counter(k[:2] for k in keys)
    group_labels = tuple((" · ".join(p for p in g if p), groups[g]) for g in dict.fromkeys(k[:2] for k in keys))
    out = []
    for model, rows in rows_by_model.items():
        by_key: dict[tuple[str, str, str], list[RowLike]] = {}
        for r in rows:
            by_key.setdefault(_column(r, multi), []).append(r)
        squares = tuple(_square(by_key.get(k, []), states) for k in keys)
        ran = sum(states.get(r.cell) in ("ran", "simulated") for r in rows)
        out.append(HeatRow(model, squares, ran, sum(states.get(r.cell) != "na" for r in rows)))
    return Heatmap(group_labels, tuple(k[2] for k in keys), tuple(out))


def fold(rows: Sequence[RowLike]) -> tuple[Folded, ...]:
    """Rows that did not run, one entry per (status, reason), most cells first (N/A last)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        groups.setdefault((r.status, r.reason), []).append(r.cell)
    return tuple(Folded(s, why, tuple(cells)) for (s, why), cells
                 in sorted(groups.items(), key=lambda item: (item[0][0] == "na", -len(item[1]), item[0][1])))


def heat_status(row: RowLike, state: CellState | None) -> str:
    return "simulated" if state == "simulated" else row.status


def _square(rows: Sequence[RowLike], states: Mapping[str, CellState]) -> HeatSquare:
    if not rows:
        return HeatSquare("absent", "", "not in this run")
    statuses = [heat_status(r, states.get(r.cell)) for r in rows]
    worst = min(range(len(rows)), key=lambda i: HEAT_ORDER.index(statuses[i]) if statuses[i] in HEAT_ORDER else 0)
    executed = {states.get(r.cell) in ("ran", "simulated") for r in rows}
    first = rows[worst]
    title = f"{first.cell}: {statuses[worst]}" + (f" — {first.reason}" if first.reason and statuses[worst] != "pass" else "")
    if len(rows) > 1:
        title += " · " + ", ".join(f"{n} {s}" for s, n in Counter(statuses).most_common()) + f" of {len(rows)} cells"
    return HeatSquare(statuses[worst], first.anchor, title, len(rows), len(executed) > 1, any(r.new_failure for r in rows))


def _column(r: RowLike, multi: bool) -> tuple[str, str, str]:
    return (r.runtime if multi else "", r.device, r.offload)


def _column_order(key: tuple[str, str, str]) -> tuple[object, ...]:
    runtime, device, offload = key
    return (runtime, DEVICES.index(device) if device in DEVICES else len(DEVICES), device, offload != "none", offload)
