"""Absent devices skip with a reason that names what was looked for; meaningless cells are N/A."""
from __future__ import annotations

import json
from pathlib import Path

from harness.checks import CHECKS


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_absent_npu_cells_skip_with_what_was_looked_for(matrix_suite, tmp_path):
    out = tmp_path / "run"
    result = matrix_suite.runpytest("-rs", "-m", "npu", "--devices", "cpu,npu", "--models", "tiny-llama",
                                    "--offload-modes", "none", "--harness-out", str(out))
    assert result.ret == 1  # nothing ran: NO-GO, and the exit code says so (a nightly never passes by skipping)
    result.assert_outcomes(skipped=len(CHECKS.names()))
    result.stdout.fnmatch_lines(["Verdict: NO-GO*nothing-ran*npu 0/1*", "*not run on npu: 1 of 1 cells*"])
    result.stdout.fnmatch_lines(["*no NPU device: looked with import torch_npu; torch.npu.device_count()*"])
    recs = records(out)
    assert {r["status"] for r in recs} == {"skipped"}
    assert all("torch_npu" in r["reason"] for r in recs)
    assert (out / "index.html").is_file()


def test_cpu_offload_on_cpu_is_na_not_a_pass(matrix_suite, tmp_path):
    out = tmp_path / "run"
    result = matrix_suite.runpytest("-rs", "--devices", "cpu", "--models", "tiny-llama", "--offload-modes", "cpu",
                                    "--harness-out", str(out))
    result.assert_outcomes(skipped=len(CHECKS.names()))
    result.stdout.fnmatch_lines(["*N/A: cpu offload moves weights to host memory*"])
    recs = records(out)
    assert [r["status"] for r in recs] == ["na"] * len(CHECKS.names())
    assert recs[0]["reason"].startswith("cpu offload moves weights")


def test_real_model_without_checkpoint_is_skipped_with_the_fix(matrix_suite, tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_MODEL_ROOT", raising=False)
    out = tmp_path / "run"
    result = matrix_suite.runpytest("-rs", "--devices", "cpu", "--models", "glm-4.7-flash", "--offload-modes", "none",
                                    "--harness-out", str(out))
    result.assert_outcomes(skipped=len(CHECKS.names()))
    result.stdout.fnmatch_lines(["*set HARNESS_MODEL_ROOT to a directory holding GLM-4.7-Flash/*"])
