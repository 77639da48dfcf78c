"""xdist scheduling by cell: every check of a cell runs on one worker, so the cell boots once.

Cells are handed out longest first (by the durations of an earlier run, when there is one), so
the cells that start last are the short ones and the workers finish close together.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
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

    def __init__(self, config: Any, log: Any = None, *, cells: Iterable[str] = (), checks: Iterable[str] = (),
                 durations: Mapping[str, float] | None = None) -> None:
        super().__init__(config, log)
        self._cells = frozenset(cells)
        self._checks = tuple(sorted(checks, key=len, reverse=True))
        self._durations = dict(durations or {})
        self._ordered = False

    def _split_scope(self, nodeid: str) -> str:
        return cell_scope(nodeid, self._cells, self._checks) or super()._split_scope(nodeid)

    def _assign_work_unit(self, node: Any) -> None:
        if not self._ordered:  # the work queue is complete before the first unit goes out
            self._ordered = True
            order = longest_first(list(self.workqueue), self._durations)
            for scope in order:
                self.workqueue.move_to_end(scope)
        super()._assign_work_unit(node)


def longest_first(scopes: list[str], durations: Mapping[str, float]) -> list[str]:
    """Scopes by known duration, longest first; unknown ones (and non-cells) keep their order after.

    >>> longest_first(["a", "b", "c", "d"], {"b": 1.0, "c": 5.0})
    ['c', 'b', 'a', 'd']
    """
    known = sorted((s for s in scopes if s in durations), key=lambda s: -durations[s])
    return known + [s for s in scopes if s not in durations]
