"""Matrix files: axes, include, exclude and N/A rules, and errors that name file, field and value."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.matrix import Cell
from harness.config.matrixfile import MatrixFile
from harness.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_axes_rules_and_include(tmp_path):
    write(tmp_path / "base.yaml", "runtimes: [hf]\ndevices: [cpu, npu]\nexclude: [{device: npu, offload: cpu}]\n")
    m = MatrixFile.load(write(tmp_path / "m.yaml", "include: base.yaml\ndevices: [npu]\ntp: [1, 2]\n"
                              "na: [{match: {tp: '2', offload: disk}, reason: no sharded disk offload}]\n"
                              "runtime_options: {hf: {boot_timeout: 30, args: [--x], env: {A: b}}}\n"))
    assert m.axes["runtimes"] == ("hf",) and m.axes["devices"] == ("npu",) and m.axes["tp"] == ("1", "2")
    assert m.axes["models"] is None
    assert m.excluded(Cell("hf", "npu", "tiny-llama", "cpu"))
    assert not m.excluded(Cell("hf", "npu", "tiny-llama", "disk"))
    assert m.na_reason(Cell("hf", "npu", "tiny-llama", "disk", tp=2)) == "no sharded disk offload"
    assert m.runtime_options["hf"].boot_timeout == 30 and m.runtime_options["hf"].env == {"A": "b"}


@pytest.mark.parametrize("text, expect", [
    ("runtimes: [hf]\ncolour: red\n", "unknown field(s) ['colour']; known:"),
    ("devices: []\n", "'devices' must be a non-empty list"),
    ("exclude: [{gpu: x}]\n", "exclude[0]: unknown cell field(s) ['gpu']; known:"),
    ("na: [{match: {device: npu}}]\n", "na[0]: an N/A rule is {match: {...}, reason: '...'}"),
    ("runtime_options: {hf: {boot_timeout: -1}}\n", "runtime_options.hf.boot_timeout must be a positive number"),
    ("runtimes: [hf\n", "not valid YAML"),
])
def test_errors_name_file_field_and_fix(tmp_path, text, expect):
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as err:
        MatrixFile.load(path)
    assert str(path) in str(err.value) and expect in str(err.value)


def test_include_cycle_is_reported(tmp_path):
    write(tmp_path / "a.yaml", "include: b.yaml\n")
    write(tmp_path / "b.yaml", "include: a.yaml\n")
    with pytest.raises(ConfigError, match="include cycle"):
        MatrixFile.load(tmp_path / "a.yaml")


def test_matrix_file_drives_collection_and_cli_overrides_it(matrix_suite, tmp_path):
    m = write(tmp_path / "m.yaml", "devices: [cpu]\nmodels: [tiny-llama, tiny-qwen2-moe]\noffload_modes: [none, disk]\n"
                                   "exclude: [{model: tiny-qwen2-moe, offload: disk}]\n"
                                   "na: [{match: {model: tiny-llama, offload: disk}, reason: testing N/A rules}]\n")
    result = matrix_suite.runpytest("--collect-only", "-q", "--matrix", str(m))
    cells = {line.split("[")[1].rsplit("-", 1)[0] for line in result.outlines if "::" in line}
    assert cells == {"hf-cpu-tiny-llama-none", "hf-cpu-tiny-llama-disk", "hf-cpu-tiny-qwen2-moe-none"}
    assert not any("qwen2-moe-disk" in c for c in cells)
    result = matrix_suite.runpytest("--collect-only", "-q", "--matrix", str(m), "--models", "tiny-llama")
    assert all("tiny-llama" in line for line in result.outlines if "::" in line)
    result = matrix_suite.runpytest("-rs", "--matrix", str(m), "--models", "tiny-llama", "--offload-modes", "disk",
                                    "--harness-out", str(tmp_path / "out"))
    result.stdout.fnmatch_lines(["*N/A: testing N/A rules*"])


def test_bad_matrix_file_is_a_usage_error(matrix_suite, tmp_path):
    m = write(tmp_path / "m.yaml", "devices: [tpu]\n")
    result = matrix_suite.runpytest("--collect-only", "--matrix", str(m))
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown device 'tpu' in --devices; known: cpu, cuda, npu, rocm, xpu*"])
