"""The verdict at the end of a pytest session over the suites: the exit code and the terminal lines.

The plugin's hooks decide when; this module says what: ``gated_exit`` turns pytest's outcome into
the verdict's exit code, ``write_verdict`` writes the failures grouped by cause, the verdict with
what ran per device, and the report's path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.causes import format_groups, group_failures
from harness.results import read_results


def gated_exit(status: int, verdict: str) -> int | pytest.ExitCode:
    """The session's exit code once a verdict exists: 0 on GO, 1 on NO-GO.

    pytest's own outcome (tests failed, no tests ran) is replaced by the verdict, which the policy
    decides (a waived failure is GO; a run where nothing required ran is NO-GO). An interrupted
    session (2), an internal error (3) or a usage error (4) keep their codes.
    """
    if status in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        return pytest.ExitCode.OK if verdict == "GO" else pytest.ExitCode.TESTS_FAILED
    return status


def write_verdict(terminalreporter: Any, run_dir: Path, outcome: Any) -> None:
    """Failures by cause (when any), then the verdict section; ``outcome`` is None when no report was rendered."""
    groups = outcome.data.causes if outcome is not None else group_failures(read_results(run_dir / "results.jsonl").records)
    causes = format_groups(list(groups))  # the report grouped them already; read the results only when it failed
    if causes:
        terminalreporter.write_sep("-", "harness failures by cause")
        for line in causes:
            terminalreporter.write_line(line, red=True)
    if outcome is None:
        return
    from harness.reports.commands import verdict_lines

    terminalreporter.write_sep("-", "harness verdict")
    for i, line in enumerate(verdict_lines(outcome, limit=0 if causes else 10)):  # the causes name the failures
        terminalreporter.write_line(line, bold=i == 0, green=i == 0 and outcome.verdict == "GO",
                                    red=i == 0 and outcome.verdict != "GO")
    terminalreporter.write_line(f"results: {outcome.index.parent / 'results.jsonl'}")
    terminalreporter.write_line(f"report:  {outcome.index}")
