"""A nightly NPU runner must never pass by skipping every cell."""
from __future__ import annotations


def test_require_npu_without_npu_fails_and_says_how_it_looked(matrix_suite, tmp_path):
    result = matrix_suite.runpytest("-m", "npu", "--require-devices", "npu", "--devices", "cpu,npu",
                                    "--models", "tiny-llama", "--harness-out", str(tmp_path / "out"))
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--require-devices npu: no NPU device available: no NPU device: looked with "
                                 "import torch_npu; torch.npu.device_count()*must not pass by skipping*"])


def test_simulated_devices_never_satisfy_a_requirement(matrix_suite, tmp_path):
    result = matrix_suite.runpytest("--require-devices", "npu", "--simulate-devices", "npu:8", "--devices", "npu",
                                    "--models", "tiny-llama", "--harness-out", str(tmp_path / "out"))
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*it was simulated (--simulate-devices)*"])
