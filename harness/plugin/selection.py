"""Which matrix items run: their marks, this shard's cells, and why an item is N/A or skipped.

The session's collection hooks decide when; these functions say what, from the plan indexed by
cell id (``PlanIndex``), so no hook scans the plan per item.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import final

import pytest

from harness.boot.devices import DeviceInventory
from harness.config.matrix import Cell, PlannedCell
from harness.plugin.plan import Plan


@final
@dataclasses.dataclass(frozen=True)
class PlanIndex:
    """The plan with its cells by id, and the parametrize ids of its matrix tests by cell.

    >>> from harness.config.matrix import Cell, PlannedCell
    >>> cell = Cell("hf", "cpu", "m", "none")
    >>> index = PlanIndex.of(Plan((PlannedCell(cell, None),), {}, ("accuracy",)))
    >>> index.cell_of_param("hf-cpu-m-none-accuracy"), index.cell_of_param("other")
    ('hf-cpu-m-none', None)
    """

    plan: Plan
    by_id: Mapping[str, PlannedCell]
    by_param: Mapping[str, str]

    @classmethod
    def of(cls, plan: Plan) -> PlanIndex:
        by_id = {p.cell.id: p for p in plan.cells}
        return cls(plan, by_id, {f"{cell_id}-{check}": cell_id for cell_id in by_id for check in plan.checks})

    @property
    def cell_ids(self) -> list[str]:
        return list(self.by_id)

    def cell(self, cell_id: str) -> Cell:
        return self.by_id[cell_id].cell

    def cell_of_param(self, param: str) -> str | None:
        """The cell id of a matrix test's parametrize id (``<cell>-<check>``), or None."""
        return self.by_param.get(param)


def _param(item: pytest.Item, name: str) -> object:
    return getattr(getattr(item, "callspec", None), "params", {}).get(name)


def cell_of(item: pytest.Item) -> Cell | None:
    """The cell a matrix test runs on, or None for any other test."""
    cell = _param(item, "harness_runtime")
    return cell if isinstance(cell, Cell) else None


def check_of(item: pytest.Item) -> str | None:
    """The check a matrix test runs, or None."""
    check = _param(item, "harness_check")
    return check if isinstance(check, str) else None


def marks(cell: Cell, plan: Plan) -> list[pytest.MarkDecorator]:
    """``-m`` markers of a cell: its device, ``offload`` and ``moe`` where they apply."""
    out = [getattr(pytest.mark, cell.device)]
    if cell.offload != "none":
        out.append(pytest.mark.offload)
    if "moe" in plan.card(cell).tags:
        out.append(pytest.mark.moe)
    return out


def why_not(index: PlanIndex, devices: Mapping[str, DeviceInventory], cell: Cell,
            check: str | None) -> tuple[str | None, str | None]:
    """(N/A reason, skip reason) of one matrix item; both None when it runs."""
    planned = index.by_id[cell.id]
    if planned.na_reason:
        return planned.na_reason, None
    card = index.plan.card(cell)
    if check is not None:
        from harness.checks import CHECKS
        from harness.runtimes import RUNTIMES

        na = CHECKS.get(check).na_reason(cell, card) or RUNTIMES.get(cell.runtime).check_na_reason(check, cell, card)
        if na:
            return na, None
    unavailable = card.unavailable_reason()
    if unavailable:
        return None, unavailable
    return None, devices[cell.device].absent_reason


def split_shard(items: list[pytest.Item], owner: Mapping[str, int], shard: int) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """(kept, dropped): matrix items of cells another shard owns are dropped; other tests are kept."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        cell = cell_of(item)
        (drop if cell is not None and owner[cell.id] != shard else keep).append(item)
    return keep, drop
