"""Flakes: a failing cell is booted again once and its failing checks re-run; the outcome is classified.

After every cell has run (all runtimes stopped), each cell with a failing or erroring check boots
once more and re-runs those checks as the same pytest items, so the retry's reports and records
travel like the first ones (also from xdist workers). Both attempts are kept in results.jsonl: the
retry's records carry ``attempt: 2`` and ``flake``:

- ``flaky``            the check passed on the retry
- ``nondeterministic`` it failed again, and the two boots disagree beyond tolerance (their |Δ logprob|
                       vs the reference differ by more than the limit, greedy tokens or correct answers differ)
- ``broken``           it failed the same way twice

Retries are counted, never hidden; the sign-off policy decides whether a flaky result blocks
(``flaky_blocks``). Not retried: preflight failures (nothing to gain), a session stopped early
(``-x``, Ctrl-C), ``--retries 0``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from harness.errors import PREFLIGHT_REASON
from harness.plugin.recorder import RECORD_PROPERTY, RESULT_KEY, RUNTIME_INFO_KEY

ATTEMPT_KEY = pytest.StashKey[int]()
NOT_RETRIED = (PREFLIGHT_REASON,)


class CellRetry:
    """Registered in each process that runs cells: notes failing checks, then re-runs them once."""

    def __init__(self, on_retry: Any = None) -> None:
        self.first: dict[tuple[str, str], dict[str, Any]] = {}
        self.failing: dict[str, list[pytest.Item]] = {}  # cell id -> its failing items, in run order
        self.on_retry = on_retry  # called before the retries start (e.g. to stop boots made ahead)
        self.retried = 0

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report: pytest.TestReport = yield
        attempt = item.stash.get(ATTEMPT_KEY, 1)
        for key, value in report.user_properties:
            if key != RECORD_PROPERTY or not isinstance(value, dict):
                continue
            data: dict[str, Any] = value
            data["attempt"] = attempt
            where = (data["cell"], data["check"])
            if attempt > 1:
                data["flake"] = classify(self.first.get(where), data)
                continue
            self.first[where] = data
            if data["status"] in ("fail", "error") and not str(data.get("reason", "")).startswith(NOT_RETRIED):
                self.failing.setdefault(data["cell"], []).append(item)
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        result = yield
        if self.failing and not (session.shouldfail or session.shouldstop):
            if self.on_retry is not None:
                self.on_retry()
            for items in self.failing.values():
                self._retry_cell(items)
        return result

    def _retry_cell(self, items: list[pytest.Item]) -> None:
        """Boot the cell again (its runtime fixture was torn down) and re-run its failing items in order."""
        worker = _xdist_worker(items[0].config)
        for i, item in enumerate(items):
            if worker is not None:  # an xdist worker reports only the item it believes is running
                worker.item_index = item.session.items.index(item)
            stale: tuple[pytest.StashKey[Any], ...] = (RESULT_KEY, RUNTIME_INFO_KEY)
            for key in stale:
                if key in item.stash:
                    del item.stash[key]
            item.stash[ATTEMPT_KEY] = 2
            nextitem = items[i + 1] if i + 1 < len(items) else None
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            runtestprotocol(item, nextitem=nextitem, log=True)
            item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
            self.retried += 1


def _xdist_worker(config: pytest.Config) -> Any:
    """The xdist worker's interactor plugin (it relays reports to the controller), or None."""
    if not hasattr(config, "workerinput"):
        return None
    return next((p for p in config.pluginmanager.get_plugins() if type(p).__name__ == "WorkerInteractor"), None)


def classify(first: Mapping[str, Any] | None, retry: Mapping[str, Any]) -> str:
    """``flaky``, ``nondeterministic`` or ``broken`` for a retry of a check that failed first.

    >>> classify({"status": "fail"}, {"status": "pass"})
    'flaky'
    >>> lp = lambda d: {"status": "fail", "metrics": {"max_abs_delta": d, "limit_max_abs_delta": 1e-4}}
    >>> classify(lp(0.5), lp(0.2)), classify(lp(0.5), lp(0.5))
    ('nondeterministic', 'broken')
    """
    if retry.get("status") == "pass":
        return "flaky"
    if first is not None and disagree(first.get("metrics") or {}, retry.get("metrics") or {}):
        return "nondeterministic"
    return "broken"


def disagree(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two boots' metrics of one check prove their outputs differ beyond tolerance.

    For logprobs, | |got1 - ref| - |got2 - ref| | <= |got1 - got2| (the reverse triangle inequality
    over the sup norm), so maxima that differ by more than the limit mean the boots disagree by more.
    """
    da, db = _num(a.get("max_abs_delta")), _num(b.get("max_abs_delta"))
    if da is not None and db is not None:
        limit = _num(a.get("limit_max_abs_delta")) or 0.0
        if abs(da - db) > limit or a.get("token_agreement") != b.get("token_agreement"):
            return True
    if "correct" in a and "correct" in b:
        return a["correct"] != b["correct"]
    return False


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None
