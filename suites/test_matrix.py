"""Every registered check on every cell of the matrix.

Test ids read like the matrix: ``test_check[hf-cpu-tiny-llama-disk-accuracy]``. The runtime of a
cell boots once (``harness_runtime`` is session-scoped per cell) and serves all of its checks.
Each result goes out through ``pytest_harness_check_result``; the harness records it from there.
"""
from __future__ import annotations

import time

import pytest

from harness.boot.cellrun import RunningRuntime
from harness.checks.run import run_check


def test_check(harness_runtime: RunningRuntime, harness_check: str, request: pytest.FixtureRequest) -> None:
    began = time.monotonic()
    result = run_check(harness_runtime, harness_check)
    request.config.hook.pytest_harness_check_result(cell=harness_runtime.cell, check=harness_check, result=result,
                                                    seconds=round(time.monotonic() - began, 3))
    if result.status == "na":
        pytest.skip(f"N/A: {result.reason}")
    if result.status == "fail":
        pytest.fail(result.reason, pytrace=False)
