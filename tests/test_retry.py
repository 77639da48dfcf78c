"""Flakes: a failing cell boots again once; flaky, broken and nondeterministic are told apart and shown.

The end-to-end cases drive the real hf runtime through `harness run` with its test-only chaos and
fault switches: a crash on the cell's first boot only (flaky), a crash on every boot (broken), and a
weight scaled differently on each boot (nondeterministic).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.boot.lifecycle import processes_with_env
from harness.checks import CHECKS
from harness.plugin.retry import classify, disagree

ONE_CELL = ("--devices", "cpu", "--models", "tiny-llama", "--offload-modes", "none")
CELL = "hf-cpu-tiny-llama-none"


def test_a_pass_on_retry_is_flaky_and_a_second_failure_broken_unless_the_boots_disagree():
    fail = {"status": "fail", "metrics": {"correct": 9, "total": 12}}
    assert classify(fail, {"status": "pass"}) == "flaky"
    assert classify(fail, {"status": "fail", "metrics": {"correct": 9, "total": 12}}) == "broken"
    assert classify(fail, {"status": "fail", "metrics": {"correct": 7, "total": 12}}) == "nondeterministic"
    assert classify({"status": "error"}, {"status": "error", "reason": "boot-crash: x"}) == "broken"
    assert classify(None, {"status": "fail"}) == "broken"


def test_logprob_boots_disagree_only_beyond_the_limit():
    a = {"max_abs_delta": 0.50, "limit_max_abs_delta": 1e-4, "token_agreement": 1.0}
    assert disagree(a, {**a, "max_abs_delta": 0.50005}) is False  # within the limit: cannot tell them apart
    assert disagree(a, {**a, "max_abs_delta": 0.5002}) is True
    assert disagree(a, {**a, "token_agreement": 0.9}) is True
    assert disagree(a, {**a, "max_abs_delta": "inf"}) is False  # not a finite figure: no claim


class FlakeTags(HTMLParser):
    """The report's flake tags (``data-flake``) and the first boot's results shown beside a retry."""

    def __init__(self) -> None:
        super().__init__()
        self.flakes: list[str] = []
        self.first_boots: list[str] = []
        self._in_first = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("data-flake"):
            self.flakes.append(str(a["data-flake"]))
        self._in_first = "first-boot" in (a.get("class") or "").split()
        if self._in_first:
            self.first_boots.append("")

    def handle_data(self, data: str) -> None:
        if self._in_first:
            self.first_boots[-1] += data

    def handle_endtag(self, tag: str) -> None:
        self._in_first = False


def run(out: Path, tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    state = tmp_path / "chaos"
    state.mkdir(exist_ok=True)
    full = {**os.environ, "HARNESS_RETRIES": "1", "HARNESS_HF_CHAOS_STATE": str(state), **env}
    cmd = [sys.executable, "-m", "harness.cli", "run", "--out", str(out), *ONE_CELL, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=full)


def attempts(out: Path) -> dict[int, dict[str, dict]]:
    recs = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    by: dict[int, dict[str, dict]] = {}
    for r in recs:
        by.setdefault(r["attempt"], {})[r["check"]] = r
    return by


def boots(out: Path) -> int:
    return sum(1 for line in (out / "events.jsonl").read_text().splitlines() if json.loads(line)["event"] == "boot")


@pytest.mark.e2e
def test_a_crash_on_the_first_boot_only_is_flaky_shown_and_the_policy_decides(tmp_path):
    out = tmp_path / "run"
    done = run(out, tmp_path, {"HARNESS_HF_CHAOS": f"{CELL}=crash_on_boot_once"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]  # default policy: flaky does not block
    first, retry = attempts(out)[1], attempts(out)[2]
    assert {r["status"] for r in first.values()} == {"error"} and all("boot-crash" in r["reason"] for r in first.values())
    assert {(r["status"], r["flake"]) for r in retry.values()} == {("pass", "flaky")}
    assert boots(out) == 2
    assert f"{len(CHECKS.names())} flaky (passed on retry)" in done.stdout
    shown = FlakeTags()
    shown.feed((out / "index.html").read_text())
    checks = len(CHECKS.names())
    assert shown.flakes == ["flaky"] * checks and len(shown.first_boots) == checks  # both boots shown, retry marked
    assert all(t.startswith("first boot: error — boot-crash") for t in shown.first_boots)
    assert not processes_with_env("HARNESS_OUT", str(out.resolve()))
    strict = tmp_path / "strict.yaml"
    strict.write_text("schema: 1\nrequired: [{cells: '*', checks: '*', allow_skipped: true}]\nflaky_blocks: true\n")
    report = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(out), "--policy", str(strict)],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 1 and f"flaky {CELL} accuracy: failed, then passed" in report.stdout, report.stdout


@pytest.mark.e2e
def test_a_crash_on_every_boot_is_broken_and_blocks(tmp_path):
    out = tmp_path / "run"
    done = run(out, tmp_path, {"HARNESS_HF_CHAOS": f"{CELL}=crash_on_boot"})
    assert done.returncode == 1
    retry = attempts(out)[2]
    assert {(r["status"], r["flake"]) for r in retry.values()} == {("error", "broken")}
    assert boots(out) == 2
    assert "(exit code 3) (broken: failed on both boots) — hf-cpu-tiny-llama-none" in done.stdout


@pytest.mark.e2e
def test_two_boots_that_load_different_weights_are_nondeterministic(tmp_path):
    out = tmp_path / "run"
    done = run(out, tmp_path, {"HARNESS_HF_FAULT": "norm_jitter", "HARNESS_REFERENCE_DIR": str(tmp_path / "refs")})
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    first, retry = attempts(out)[1], attempts(out)[2]
    assert first["logprob_parity"]["status"] == retry["logprob_parity"]["status"] == "fail"
    assert retry["logprob_parity"]["flake"] == "nondeterministic"
    assert retry["weight_parity"]["flake"] == "broken"  # weights wrong on both boots; their figures are not compared


@pytest.mark.e2e
def test_retries_zero_never_boots_a_cell_twice(tmp_path):
    out = tmp_path / "run"
    done = run(out, tmp_path, {"HARNESS_HF_CHAOS": f"{CELL}=crash_on_boot_once"}, "--retries", "0")
    assert done.returncode == 1 and set(attempts(out)) == {1} and boots(out) == 1


@pytest.mark.e2e
def test_retries_work_on_xdist_workers_too(tmp_path):
    out = tmp_path / "run"
    done = run(out, tmp_path, {"HARNESS_HF_CHAOS": f"{CELL}=crash_on_boot_once"}, "-n", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert {(r["status"], r["flake"]) for r in attempts(out)[2].values()} == {("pass", "flaky")}
    assert "INTERNALERROR" not in done.stdout + done.stderr and "failures by cause" not in done.stdout
