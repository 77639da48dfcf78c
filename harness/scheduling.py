"""xdist scheduling by cell: every check of a cell runs on one worker, so the cell boots once."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xdist.scheduler import LoadScopeScheduling


def cell_scope(nodeid: str, cells: frozenset[str], checks: Iterable[str]) -> str | None:
    """The cell of a matrix test's nodeid, or None for any other test.

    >>> cell_scope("suites/test_matrix.py::test_check[hf-cpu-tiny-llama-disk-weight_parity]",
    ...            frozenset({"hf-cpu-tiny-llama-disk"}), ["accuracy", "weight_parity"])
    'hf-cpu-tiny-llama-disk'
    """
    param = nodeid.partition("[")[2].rpartition("]")[0]
    for check in checks:
        cell = param.removesuffix(f"-{check}")
        if cell != param and cell in cells:
            return cell
    return None


class CellScheduling(LoadScopeScheduling):
    """LoadScopeScheduling whose scope of a matrix test is its cell (other tests: their module)."""

    def __init__(self, config: Any, log: Any = None, *, cells: Iterable[str] = (), checks: Iterable[str] = ()) -> None:
        super().__init__(config, log)
        self._cells = frozenset(cells)
        self._checks = tuple(sorted(checks, key=len, reverse=True))

    def _split_scope(self, nodeid: str) -> str:
        return cell_scope(nodeid, self._cells, self._checks) or super()._split_scope(nodeid)
