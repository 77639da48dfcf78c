"""Preflight: a runtime its interpreter cannot import is one line with the fix, red cells, no boot, no traceback.

The interpreter is a real, empty venv (no torch, no sglang), as on a box where the runtime was
never installed into the environment --runtime-python points at.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from harness.causes import CauseGroup, group_failures
from harness.checks import CHECKS

FIX = "install it (pip install sglang==0.5.23) or point --runtime-python sglang=PATH at its venv"


@pytest.fixture(scope="module")
def empty_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    home = tmp_path_factory.mktemp("empty-venv")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(home)
    return str(home / "bin" / "python")


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _cause(python: str) -> str:
    return f"python {python} cannot `import sglang` (ModuleNotFoundError: No module named 'sglang'); {FIX}"


def test_one_line_with_the_fix_red_cells_and_no_boot(matrix_suite, tmp_path, empty_python):
    out = tmp_path / "run"
    result = matrix_suite.runpytest("--runtimes", "sglang", "--devices", "cpu", "--models", "tiny-llama,tiny-qwen2-moe",
                                    "--offload-modes", "none", "--runtime-python", f"sglang={empty_python}",
                                    "--harness-out", str(out), "--harness-progress", "-rfE")
    text = result.stdout.str()
    assert result.ret == 1
    result.assert_outcomes(errors=2 * len(CHECKS.names()))
    assert [line for line in result.outlines if line.startswith("harness: runtime")] == [
        f"harness: runtime sglang cannot run: {_cause(empty_python)}"]
    assert "Traceback" not in text and "PreflightError" not in text and "lifecycle.py" not in text
    assert "ERROR at setup" not in text  # no ERRORS section repeating each check
    recs = _records(out)
    assert len(recs) == 2 * len(CHECKS.names()) and {r["status"] for r in recs} == {"error"}
    assert {r["reason"] for r in recs} == {f"preflight: {_cause(empty_python)}"}
    assert group_failures(recs) == [CauseGroup(f"preflight: {_cause(empty_python)}",
                                               ("sglang-cpu-tiny-llama-none", "sglang-cpu-tiny-qwen2-moe-none"))]
    result.stdout.fnmatch_lines(["*harness failures by cause*", "2 cells: preflight: python * cannot `import sglang`*"])
    assert not (out / "logs").exists()  # no boot was attempted
    events = (out / "events.jsonl").read_text() if (out / "events.jsonl").exists() else ""
    assert '"boot"' not in events


def test_runtimes_that_can_run_are_not_held_back(matrix_suite, tmp_path, empty_python):
    """Only the runtime that fails its preflight is red; an hf cell deselected by -k is never probed."""
    out = tmp_path / "run"
    result = matrix_suite.runpytest("--runtimes", "hf,sglang", "--devices", "cpu", "--models", "tiny-llama",
                                    "--offload-modes", "none", "--runtime-python", f"sglang={empty_python}",
                                    "--runtime-python", f"hf={empty_python}", "-k", "sglang",
                                    "--harness-out", str(out))
    assert [line for line in result.outlines if line.startswith("harness: runtime")] == [
        f"harness: runtime sglang cannot run: {_cause(empty_python)}"]
    assert {r["cell"] for r in _records(out)} == {"sglang-cpu-tiny-llama-none"}


def test_harness_run_without_the_runtime_prints_under_30_lines(tmp_path, empty_python):
    """The acceptance case of issue 13: the whole default matrix of a runtime that is not installed."""
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--runtimes", "sglang", "--out", str(out),
                           "--runtime-python", f"sglang={empty_python}"],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ))
    lines = (done.stdout + done.stderr).splitlines()
    assert done.returncode != 0
    assert len(lines) < 30, "\n".join(lines)
    assert sum(_cause(empty_python) in line for line in lines) >= 1 and "Traceback" not in done.stdout + done.stderr
    recs = [r for r in _records(out) if r["status"] == "error"]
    assert recs and all(r["reason"] == f"preflight: {_cause(empty_python)}" for r in recs)
