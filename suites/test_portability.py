"""Portability of every runtime of the matrix: accelerator-only imports and names, found statically.

One test per runtime, ``test_portability[portability-sglang]``; not a matrix cell, it boots
nothing. It analyses the runtime's installed package in the runtime's own interpreter
(``--runtime-python``), merges the result into ``<run dir>/portability.json`` (the report's
portability section) and fails on findings missing from the baseline: ``$HARNESS_PORTABILITY_BASELINE``
(a file, or a directory of ``<runtime>-<version>.json``), else the one shipped in
``harness/portability/baselines/``. ``HARNESS_PORTABILITY_PROBE=1`` adds the (slow) import probe.
"""
from __future__ import annotations

import os

import pytest

from harness.plugin.main import session_of
from harness.portability.locate import RuntimeNotInstalled
from harness.portability.profile import PROFILES
from harness.portability.runfile import check_runtime, failure_message, record, skipped_entry

NOT_CHECKED = {
    "hf": "hf is the transformers reference, not a serving runtime with device kernels: nothing to check for portability",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One parameter per runtime of the matrix: ``test_portability[portability-sglang]``."""
    if "portability_runtime" not in metafunc.fixturenames:
        return
    params = []
    for runtime in sorted({p.cell.runtime for p in session_of(metafunc.config).plan.cells}):
        why = _not_checked(runtime, metafunc.config)
        params.append(pytest.param(runtime, id=f"portability-{runtime}", marks=[pytest.mark.skip(reason=why)] if why else []))
    metafunc.parametrize("portability_runtime", params)


def _not_checked(runtime: str, config: pytest.Config) -> str | None:
    """Why ``runtime`` gets no portability check in this session, or None."""
    if runtime in NOT_CHECKED:
        return NOT_CHECKED[runtime]
    if runtime not in PROFILES.names():
        return f"no portability profile for runtime {runtime!r} (known: {', '.join(PROFILES.names())})"
    shard = session_of(config).options.shard
    if shard and shard[0] != 1:
        return f"the portability check runs in shard 1 only (this is shard {shard[0]}/{shard[1]})"
    return None


def test_portability(portability_runtime: str, request: pytest.FixtureRequest) -> None:
    options = session_of(request.config).options
    runtime, python = portability_runtime, options.python_for(portability_runtime)
    try:
        entry = check_runtime(runtime, python, os.environ)
    except RuntimeNotInstalled as exc:
        record(options.out_dir, skipped_entry(runtime, python, str(exc)))
        pytest.skip(f"portability of {runtime} not checked: {exc}")
    except ValueError as exc:  # a bad HARNESS_PORTABILITY_* setting; the message says which and how to fix it
        pytest.fail(str(exc), pytrace=False)
    record(options.out_dir, entry)
    message = failure_message(entry)
    if message:
        pytest.fail(message, pytrace=False)
