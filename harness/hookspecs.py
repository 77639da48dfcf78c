"""The harness's hooks: what other plugins (and the harness's own parts) may listen to or add.

Registered by the harness plugin with ``pluginmanager.add_hookspecs`` (``pytest_addhooks``), so a
``conftest.py`` or an installed pytest plugin implements them as it would any pytest hook::

    def pytest_harness_runtime_ready(runtime):
        print(f"{runtime.cell.id} up in {runtime.boot_s:.1f}s")

The harness calls them from the process that does the work (an xdist worker boots and checks; the
controller renders the report). Arguments are keyword-only in implementations, as for every pytest
hook: an implementation names the ones it wants.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.boot.cellrun import RunningRuntime
    from harness.checks.base import CheckResult
    from harness.config.matrix import Cell
    from harness.reports.data import ReportData
    from harness.reports.sections import Section

hookspec = pytest.hookspec


@hookspec
def pytest_harness_runtime_booting(cell: Cell, command: str, attempt: int) -> None:
    """A cell's runtime process is about to start (``attempt`` counts from 1; a busy port retries)."""


@hookspec
def pytest_harness_runtime_ready(runtime: RunningRuntime) -> None:
    """A cell's runtime answered its readiness probe; ``runtime.boot_s`` is how long that took."""


@hookspec
def pytest_harness_runtime_stopped(cell: Cell, reason: str, seconds: float) -> None:
    """A cell's runtime was stopped (or its boot abandoned) and every resource of it released.

    ``reason``: "done", or "abandoned" (a boot ahead nobody used, a boot that failed or was interrupted);
    ``seconds``: how long the stop and release took."""


@hookspec
def pytest_harness_check_result(cell: Cell, check: str, result: CheckResult, seconds: float) -> None:
    """One check finished on one cell (pass, fail or N/A), ``seconds`` after it began.

    The matrix suite calls it (``request.config.hook``); the harness's session records the result
    from here, so a check's outcome reaches results.jsonl through this hook."""


@hookspec
def pytest_harness_report_sections(data: ReportData) -> list[Section] | None:
    """Extra sections for the HTML report of a run (``data``: the report's data, read only).

    Return a list of ``harness.reports.sections.Section``; each is drawn after the built-in
    sections, in the order the implementations answer. Called on the process that renders the
    report at the end of a pytest run (the xdist controller); ``harness report`` draws none::

        def pytest_harness_report_sections(data):
            return [Section.table("Lab", ("rack", "cards"), [("r12", "8")])]
    """
