"""Boot the next cells while the current one is checked, where the device has room.

A cell's boot is mostly the runtime importing its packages and loading weights; its checks are
mostly the runtime computing. In one process the harness would otherwise wait for each boot
in turn, so the next cell's runtime is launched as soon as the current one is ready: on the CPU
always (each runtime gets its own threads), on an accelerator only when a card is free right now
(never by waiting for one, never on a card in use). Cells are booted ahead strictly in run order:
a cell that cannot start ahead stops the look-ahead, so no later cell takes the cards it needs.
Each cell still boots exactly once and is torn down as before; a boot launched ahead that is not
the one the session asks for next (a cell skipped at run time, another order) is stopped before
that cell boots, and whatever is left at session end is stopped then.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from harness.boot import cellrun
from harness.boot.devices import DeviceInventory
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.config.options import HarnessOptions


def next_cells(order: Sequence[str], current: str, depth: int) -> list[str]:
    """The up to ``depth`` cells after ``current`` in run order.

    >>> next_cells(["a", "b", "c"], "a", 1)
    ['b']
    >>> next_cells(["a", "b", "c"], "c", 2)
    []
    """
    if current not in order:
        return []
    i = order.index(current)
    return list(order[i + 1:i + 1 + depth])


def run_order(cells: Iterable[Cell | None]) -> list[str]:
    """Cell ids in the order their checks will run (items are grouped by cell), each once."""
    return list(dict.fromkeys(c.id for c in cells if c is not None))


class BootAhead:
    """Runtimes launched ahead of their cell, keyed by cell id; at most ``depth`` at a time."""

    def __init__(self, depth: int, on_launch: Callable[[str], None] | None = None, hook: Any = None) -> None:
        self.depth = depth
        self.hook = hook  # pytest's hook relay, handed to each boot (cellrun.PendingBoot.hook)
        self.pending: dict[str, cellrun.PendingBoot] = {}
        self.failed: dict[str, str] = {}
        self._on_launch = on_launch

    def start(self, cell: Cell, card: ModelCard, options: HarnessOptions, inv: DeviceInventory | None) -> bool:
        """Have ``cell``'s runtime booting ahead; True when it is (already, or launched now).

        Anything that goes wrong here is left for the cell's own boot to meet and report (a
        missing checkpoint, a launch error): it is noted in ``failed`` and nothing is held.
        """
        if cell.id in self.pending:
            return True
        if self.depth <= 0 or cell.id in self.failed or len(self.pending) >= self.depth:
            return False
        try:
            pending = cellrun.launch(cell, card, options, inv, wait_for_cards=False, hook=self.hook)
        except Exception as exc:  # the cell's own boot raises it again, in its own test
            self.failed[cell.id] = f"{type(exc).__name__}: {exc}"
            return False
        if pending is None:
            return False
        self.pending[cell.id] = pending
        if self._on_launch is not None:
            self._on_launch(cell.id)
        return True

    def take(self, cell_id: str) -> cellrun.PendingBoot | None:
        """The boot launched for ``cell_id``, now owned by the caller; None if there is none."""
        return self.pending.pop(cell_id, None)

    def close(self) -> list[str]:
        """Stop every boot nobody took (the session ended early, a cell was not run, or the run
        order was not the one foreseen); each is stopped even when another fails to stop, and the
        first failure is raised once all were tried."""
        closed, errors = list(self.pending), []
        while self.pending:
            _, pending = self.pending.popitem()
            try:
                pending.abandon()
            except Exception as exc:  # keep stopping the others; report the first at the end
                errors.append(exc)
        if errors:
            raise errors[0]
        return closed
