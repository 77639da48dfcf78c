"""A runtime that crashes on boot: the reason is the log's last exception line, the terminal groups
the cells by it, and no traceback or log tail floods the terminal (the tail stays in the results)."""
from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from harness.boot.lifecycle import LaunchSpec, ServerProcess
from harness.checks import CHECKS
from harness.errors import RuntimeStartError

CAUSE = "ImportError: libcuda.so.1: cannot open shared object file: No such file or directory"


@pytest.fixture
def crashing_python(tmp_path: Path) -> str:
    """An interpreter that runs probes and builders normally but crashes when asked to serve (hf_server.py)."""
    wrapper = tmp_path / "python-crashes-on-serve"
    wrapper.write_text(f"""#!/bin/sh
case "$1" in *hf_server.py)
  echo 'Traceback (most recent call last):' >&2
  echo '  File "hf_server.py", line 1, in <module>' >&2
  echo '{CAUSE}' >&2
  exit 1;;
esac
exec {sys.executable} "$@"
""")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


def test_boot_crashes_are_grouped_by_the_cause_read_from_the_log(matrix_suite, tmp_path, crashing_python):
    out = tmp_path / "run"
    result = matrix_suite.runpytest("--devices", "cpu", "--models", "tiny-llama", "--offload-modes", "none,disk",
                                    "--runtime-python", f"hf={crashing_python}", "--harness-out", str(out), "-rfE")
    text = result.stdout.str()
    assert result.ret == 1
    # 2 cells x every check, on the first boot and on the retry (counted, not hidden)
    result.assert_outcomes(errors=2 * 2 * len(CHECKS.names()))
    recs = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["reason"] for r in recs} == {f"boot-crash: {CAUSE} (exit code 1)"}
    assert all("Traceback" in r["log_tail"] for r in recs)  # the evidence is kept in the results
    result.stdout.fnmatch_lines([f"2 cells: boot-crash: {CAUSE} (exit code 1) (broken: failed on both boots) — hf-cpu-tiny-llama-*"])
    assert "Traceback" not in text and "runtime log tail" not in text and "ERROR at setup" not in text


def test_a_crash_without_an_exception_line_says_how_the_process_ended(tmp_path):
    spec = LaunchSpec(cell_id="hf-cpu-m-none", argv=(sys.executable, "-c", "import sys; print('bye'); sys.exit(4)"),
                      env={}, ready_url="http://127.0.0.1:9/health", log_path=tmp_path / "x.log", boot_timeout_s=30)
    with pytest.raises(RuntimeStartError) as err:
        ServerProcess(spec).start()
    assert err.value.detail == "process exited with exit code 4 during boot"
