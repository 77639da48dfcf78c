"""Boot the next cells while the current one is checked, where the device has room.

A cell's boot is mostly the runtime importing its packages and loading weights; its checks are
mostly the runtime computing. In one process the harness would otherwise wait for each boot
in turn, so the next cell's runtime is launched as soon as the current one is ready: on the CPU
always (each runtime gets its own threads), on an accelerator only when a card is free right now
(never by waiting for one, never on a card in use). Each cell still boots exactly once and is
torn down as before; a boot launched ahead that is never used is stopped at session end.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from harness import cellrun
from harness.cards import ModelCard
from harness.devices import DeviceInventory
from harness.matrix import Cell
from harness.options import HarnessOptions


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

    def __init__(self, depth: int, on_launch: Callable[[str], None] | None = None) -> None:
        self.depth = depth
        self.pending: dict[str, cellrun.PendingBoot] = {}
        self.failed: dict[str, str] = {}
        self._on_launch = on_launch

    def start(self, cell: Cell, card: ModelCard, options: HarnessOptions, inv: DeviceInventory | None) -> bool:
        """Launch ``cell``'s runtime now if there is room; True when it was launched.

        Anything that goes wrong here is left for the cell's own boot to meet and report (a
        missing checkpoint, a launch error): it is noted in ``failed`` and nothing is held.
        """
        if self.depth <= 0 or cell.id in self.pending or cell.id in self.failed or len(self.pending) >= self.depth:
            return False
        try:
            pending = cellrun.launch(cell, card, options, inv, wait_for_cards=False)
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
        """Stop every boot nobody took (the session ended early, or its cell was not run)."""
        closed = list(self.pending)
        while self.pending:
            _, pending = self.pending.popitem()
            cellrun.abandon(pending)
        return closed
