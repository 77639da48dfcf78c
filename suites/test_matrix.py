"""Every registered check on every cell of the matrix.

Test ids read like the matrix: ``test_check[hf-cpu-tiny-llama-disk-accuracy]``. The runtime of a
cell boots once (``harness_runtime`` is session-scoped per cell) and serves all of its checks.
"""
from __future__ import annotations

import pytest

from harness.boot.cellrun import RunningRuntime
from harness.checks.run import run_check
from harness.plugin.recorder import RESULT_KEY


def test_check(harness_runtime: RunningRuntime, harness_check: str, request: pytest.FixtureRequest) -> None:
    result = run_check(harness_runtime, harness_check)
    request.node.stash[RESULT_KEY] = result
    if result.status == "na":
        pytest.skip(f"N/A: {result.reason}")
    if result.status == "fail":
        pytest.fail(result.reason, pytrace=False)
