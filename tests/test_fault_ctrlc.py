"""Ctrl-C at every phase of `harness run` (issue 13, item 7), with real processes.

A terminal's Ctrl-C is SIGINT to the whole foreground process group; a supervisor may signal the
harness alone. Whenever it comes (the tiny model being built, a runtime booting, the next cell
booting ahead, checks running, the report being rendered) the harness must exit non-zero within
STOP_S, keep every result written so far, mark the manifest ``interrupted``, render the report,
and leave no process behind: no runtime (found by the HARNESS_OUT tag), no builder, nothing in
its process group. Each test waits for its phase by watching the run, never by sleeping.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.checks import CHECKS
from tests.faultsuite import HarnessProcess, builders, leaked, lines_lost, records, result_count

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parent.parent
STOP_S = 10.0
ONE_CELL = ("--models", "tiny-llama", "--offload-modes", "none")
TWO_CELLS = ("--models", "tiny-llama", "--offload-modes", "none,disk")
SIGNAL_TO = [pytest.param(True, id="group"), pytest.param(False, id="harness-alone")]


def _stopped_cleanly(run: HarnessProcess, took_s: float, kept: int, zoo: Path | None = None) -> None:
    out = run.out
    tail = run.output()[-3000:]
    print(f"stopped {took_s:.1f}s after SIGINT")  # the figure, for -rP
    assert took_s < STOP_S, f"took {took_s:.1f}s to stop after SIGINT:\n{tail}"
    assert run.proc.returncode != 0, tail
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted", tail
    assert (out / "index.html").is_file(), tail
    assert result_count(out) >= kept and lines_lost(out) == 0
    assert leaked(out) == [] and run.group_left() == []
    if zoo is not None:
        assert builders(zoo) == []


@pytest.fixture
def harness_run(tmp_path):
    """Starts runs in tmp_path; whatever a failing test leaves running is killed afterwards."""
    started: list[HarnessProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, sigint_ignored: bool = False) -> HarnessProcess:
        started.append(HarnessProcess(tmp_path / "run", *args, env=env, sigint_ignored=sigint_ignored))
        return started[-1]

    yield start
    for run in started:
        if run.proc.poll() is None or leaked(run.out):
            run.kill()


@pytest.mark.parametrize("to_group,sigint_ignored", [
    pytest.param(True, False, id="group"), pytest.param(False, False, id="harness-alone"),
    # issue 13: started as `harness run &` from a script, SIGINT comes inherited ignored and was swallowed
    pytest.param(True, True, id="group-started-with-sigint-ignored"),
])
def test_ctrl_c_while_the_tiny_model_is_built(harness_run, tmp_path, to_group, sigint_ignored):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    run = harness_run(*ONE_CELL, env={"HARNESS_ZOO_DIR": str(zoo)}, sigint_ignored=sigint_ignored)
    run.wait_for("build_tiny.py running", lambda: bool(builders(zoo)))
    _stopped_cleanly(run, run.interrupt(to_group), kept=0, zoo=zoo)
    assert not list(zoo.glob("tiny-llama-*/zoo.json")), "the build was not stopped"


def test_ctrl_c_while_the_runtime_boots(harness_run):
    run = harness_run(*ONE_CELL)
    log = run.out / "logs" / "hf-cpu-tiny-llama-none.log"
    run.wait_for("the runtime process", lambda: bool(leaked(run.out)))
    assert "ready on" not in log.read_text(), "the runtime was ready before SIGINT: not the boot phase"
    _stopped_cleanly(run, run.interrupt(True), kept=0)


@pytest.mark.parametrize("to_group", SIGNAL_TO)
def test_ctrl_c_while_the_next_cell_boots_ahead(harness_run, to_group):
    run = harness_run(*TWO_CELLS)
    run.wait_for("a cell booting ahead", lambda: "(ahead," in run.output() and len(leaked(run.out)) >= 2)
    kept = result_count(run.out)
    _stopped_cleanly(run, run.interrupt(to_group), kept=kept)
    assert "hf-cpu-tiny-llama-disk" not in {cell for cell, _ in records(run.out)}


def test_ctrl_c_while_checks_run_keeps_their_results(harness_run):
    run = harness_run(*TWO_CELLS, "--boot-ahead", "0")
    run.wait_for("a first result", lambda: result_count(run.out) >= 1)
    kept = result_count(run.out)
    _stopped_cleanly(run, run.interrupt(True), kept=kept)
    assert len(records(run.out)) >= kept >= 1


def test_ctrl_c_while_the_report_renders(harness_run, tmp_path):
    mark = tmp_path / "rendering"
    run = harness_run(*ONE_CELL, "--", "-p", "tests.data.slow_report",
                      env={"HARNESS_TEST_RENDERING": str(mark), "PYTHONPATH": _pythonpath()})
    run.wait_for("the report being rendered", mark.exists)
    kept = result_count(run.out)
    _stopped_cleanly(run, run.interrupt(True), kept=kept)
    assert kept == len(CHECKS.names()) and "interrupted" in (run.out / "summary.md").read_text().lower()


def _pythonpath() -> str:
    import os

    return os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
