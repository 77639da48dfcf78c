"""The verdict gates: exit codes CI can trust, `pytest -m npu` from the root, `harness run --help`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.commands.run import plugin_options_help
from harness.plugin.verdict import gated_exit

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("pytest_status, verdict, expected", [
    (pytest.ExitCode.OK, "GO", 0), (pytest.ExitCode.OK, "NO-GO", 1),
    (pytest.ExitCode.TESTS_FAILED, "GO", 0),           # every failure waived by the policy: GO
    (pytest.ExitCode.NO_TESTS_COLLECTED, "NO-GO", 1),  # nothing ran is NO-GO, never 5
    (pytest.ExitCode.INTERRUPTED, "NO-GO", 2), (pytest.ExitCode.USAGE_ERROR, "NO-GO", 4),
])
def test_the_verdict_replaces_pytests_outcome(pytest_status, verdict, expected):
    assert gated_exit(pytest_status, verdict) == expected


def run_root_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`pytest ARGS` from the repository root, as the NPU nightly calls it (its run directory in tmp)."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--harness-out", str(tmp_path / "run"),
           "--models", "tiny-llama", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=dict(os.environ))


def test_pytest_m_npu_from_the_root_collects_the_npu_cells_and_fails_when_none_ran(tmp_path):
    done = run_root_pytest(tmp_path, "-m", "npu")
    out = done.stdout
    assert done.returncode == 1, out[-3000:] + done.stderr[-2000:]
    assert "suites/test_matrix.py" in out and "no NPU device" in out  # the conformance cells, skipped with the reason
    assert "Verdict: NO-GO" in out and "npu 0/3" in out and "not run on npu: 3 of 3 cells" in out
    assert (tmp_path / "run" / "index.html").is_file()


def test_pytest_m_npu_with_require_devices_fails_up_front_with_the_reason(tmp_path):
    done = run_root_pytest(tmp_path, "-m", "npu", "--require-devices", "npu")
    assert done.returncode == 4
    assert "--require-devices npu: no NPU device available" in done.stderr + done.stdout


def test_harness_run_bad_input_exits_2_and_never_prints_an_earlier_report(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "index.html").write_text("an earlier run's report")
    cmd = [sys.executable, "-m", "harness.cli", "run", "--out", str(out), "--models", "no-such-model"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "unknown model 'no-such-model'" in done.stderr + done.stdout
    assert "Report:" not in done.stdout and str(out / "index.html") not in done.stdout


def test_harness_run_help_lists_every_option_of_the_plugin():
    from harness.config.options import add_options

    names: list[str] = []

    class Parser:
        def getgroup(self, *_):
            return self

        def addoption(self, *opts, **_):
            names.extend(opts)

    add_options(Parser())
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--help"], capture_output=True, text=True, timeout=60)
    spelt_differently = {"--harness-out": "--out", "--harness-progress": "--no-progress"}
    for name in names:
        assert spelt_differently.get(name, name) in done.stdout, name
    assert "-n N" in done.stdout and "Exit status: 0 GO, 1 NO-GO" in done.stdout
    assert plugin_options_help().count("\n  --") >= len(names) - len(spelt_differently) - 6  # the axes are listed above


def test_collect_only_leaves_the_last_run_where_it_is(matrix_suite, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text('{"run_id": "r0", "status": "complete"}')
    result = matrix_suite.runpytest("--collect-only", "-q", "--devices", "cpu", "--models", "tiny-llama",
                                    "--harness-out", str(out))
    assert result.ret == 0 and "rendering the report failed" not in result.stdout.str()
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"] and not (tmp_path / "history").exists()


def test_a_shard_left_without_cells_still_writes_a_run_for_merge(matrix_suite, tmp_path):
    out = tmp_path / "run"
    result = matrix_suite.runpytest("--devices", "cpu", "--models", "tiny-llama", "--offload-modes", "none",
                                    "--shard", "2/2", "--harness-out", str(out))
    assert result.ret == 1  # nothing ran in this shard: NO-GO, and a run directory `harness merge` can read
    assert (out / "results.jsonl").read_text() == "" and (out / "index.html").is_file()
