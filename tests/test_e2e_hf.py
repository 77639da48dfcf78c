"""End to end: `harness run` boots the real hf runtime (transformers + accelerate) on the tiny zoo."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.boot.lifecycle import processes_with_env
from tests.htmlgrid import parse_report

pytestmark = pytest.mark.e2e
TINY = ("tiny-llama", "tiny-qwen2-moe", "tiny-glm4-moe-lite")


def harness_run(out: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "harness.cli", "run", "--out", str(out), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env or dict(os.environ))


def records(out: Path) -> dict[tuple[str, str], dict]:
    return {(r["cell"], r["check"]): r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("e2e") / "run"
    done = harness_run(out, "--devices", "cpu", "--models", ",".join(TINY), "--offload-modes", "none,cpu,disk")
    return done, out


def test_every_tiny_cell_is_green_on_accuracy_and_weight_parity(tiny_run):
    done, out = tiny_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    recs = records(out)
    for model in TINY:
        for offload in ("none", "disk"):
            for check in ("accuracy", "weight_parity"):
                r = recs[(f"hf-cpu-{model}-{offload}", check)]
                assert r["status"] == "pass", r
        acc = recs[(f"hf-cpu-{model}-none", "accuracy")]["metrics"]
        assert acc["correct"] / acc["total"] >= 0.9
        parity = recs[(f"hf-cpu-{model}-disk", "weight_parity")]["metrics"]
        assert parity["tensors_compared"] > 0 and parity["tensors_failed"] == 0 and parity["tensors_unavailable"] == 0
        assert recs[(f"hf-cpu-{model}-cpu", "accuracy")]["status"] == "na"


def test_records_carry_the_contract_fields(tiny_run):
    _, out = tiny_run
    r = records(out)[("hf-cpu-tiny-llama-disk", "weight_parity")]
    for field in ("run_id", "cell", "runtime", "device", "model", "offload", "check", "status", "reason", "metrics", "duration_s"):
        assert field in r
    assert r["boot_s"] > 0 and r["fingerprint"]["versions"]["transformers"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["run_id"] == r["run_id"] and manifest["ended"]


def test_report_holds_the_expected_cells_and_the_run_prints_its_path(tiny_run):
    done, out = tiny_run
    assert done.stdout.strip().splitlines()[-1] == f"Report: {out / 'index.html'}"
    page = parse_report((out / "index.html").read_text())
    assert page.verdict.split()[0] == "GO"
    for model in TINY:
        assert page.rows[f"hf-cpu-{model}-none"] == "pass"
        assert page.rows[f"hf-cpu-{model}-disk"] == "pass"
        assert page.rows[f"hf-cpu-{model}-cpu"] == "na"


def test_no_runtime_process_is_left_behind(tiny_run):
    _, out = tiny_run
    assert processes_with_env("HARNESS_OUT", str(out)) == []


def test_a_runtime_that_crashes_on_boot_is_a_red_cell_and_the_next_cell_still_runs(tmp_path):
    root = tmp_path / "models"
    broken = root / "Llama-3.1-8B-Instruct"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text('{"model_type": "llama", "vocab_size": -1}')
    out = tmp_path / "run"
    env = {**os.environ, "HARNESS_MODEL_ROOT": str(root)}
    done = harness_run(out, "--devices", "cpu", "--models", "llama-3.1-8b-instruct,tiny-llama", "--offload-modes", "none", env=env)
    assert done.returncode == 1
    recs = records(out)
    for check in ("accuracy", "weight_parity"):
        bad = recs[("hf-cpu-llama-3.1-8b-instruct-none", check)]
        assert bad["status"] == "error" and re.fullmatch(r"boot-crash: \w+(Error|Exception): .+ \(exit code \d+\)", bad["reason"])
        assert "Traceback" in bad["log_tail"]
        assert recs[("hf-cpu-tiny-llama-none", check)]["status"] == "pass"
    page = parse_report((out / "index.html").read_text())
    assert page.rows["hf-cpu-llama-3.1-8b-instruct-none"] == "error" and page.verdict.split()[0] == "NO-GO"
    assert processes_with_env("HARNESS_OUT", str(out)) == []
