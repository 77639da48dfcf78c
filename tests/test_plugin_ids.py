"""Matrix test ids read like the matrix, one per (cell, check)."""
from __future__ import annotations

from harness.checks import CHECKS


def test_ids_are_runtime_device_model_offload_check(matrix_suite):
    result = matrix_suite.runpytest("--collect-only", "-q", "--devices", "cpu", "--models", "tiny-llama,tiny-qwen2-moe",
                                    "--offload-modes", "none,disk")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [
        f"test_matrix.py::test_check[hf-cpu-{m}-{o}-{c}]"
        for m in ("tiny-llama", "tiny-qwen2-moe") for o in ("none", "disk") for c in CHECKS.names()
    ]


def test_dtype_and_tp_show_in_ids_only_when_not_default(matrix_suite):
    result = matrix_suite.runpytest("--collect-only", "-q", "--devices", "cpu", "--models", "tiny-llama",
                                    "--offload-modes", "none", "--dtypes", "float32,bfloat16", "--tp", "1,2")
    ids = {line.split("[")[1].rstrip("]") for line in result.outlines if "::" in line}
    assert "hf-cpu-tiny-llama-none-accuracy" in ids
    assert "hf-cpu-tiny-llama-none-bf16-tp2-accuracy" in ids
    assert len(ids) == 4 * len(CHECKS.names())


def test_unknown_names_are_usage_errors_listing_known_ones(matrix_suite):
    result = matrix_suite.runpytest("--collect-only", "--models", "llama-70b")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown model 'llama-70b' in --models; known: *tiny-llama*"])
    result = matrix_suite.runpytest("--collect-only", "--runtime-python", "sglang")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--runtime-python takes NAME=PATH*"])
