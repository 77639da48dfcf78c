"""Device, offload and moe markers are applied per cell, so -m selects exactly those cells."""
from __future__ import annotations

from harness.checks import CHECKS


def collected(result) -> list[str]:
    return [line.split("[")[1].rstrip("]") for line in result.outlines if "::" in line]


def test_dash_m_npu_selects_exactly_the_npu_cells(matrix_suite):
    result = matrix_suite.runpytest("--collect-only", "-q", "-m", "npu", "--devices", "cpu,cuda,npu",
                                    "--models", "tiny-llama")
    ids = collected(result)
    assert ids and all(i.startswith("hf-npu-") for i in ids)
    assert len(ids) == 3 * len(CHECKS.names())  # three offload modes x every check


def test_offload_and_moe_markers(matrix_suite):
    result = matrix_suite.runpytest("--collect-only", "-q", "-m", "moe and offload", "--devices", "cpu",
                                    "--models", "tiny-llama,tiny-qwen2-moe,tiny-glm4-moe-lite")
    ids = collected(result)
    assert ids and all(("qwen2-moe" in i or "glm4" in i) and "-none-" not in i for i in ids)
