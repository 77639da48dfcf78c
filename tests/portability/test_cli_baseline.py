"""``harness portability`` exit codes, baseline keys, JSON record and text output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.portability.cli import main
from tests.portability.support import PROFILE_YAML, SRC, SUPPRESSIONS_YAML

BASE = ["--source", str(SRC), "--profile", str(PROFILE_YAML), "--jobs", "1"]


def run(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main([*BASE, *extra])
    return code, capsys.readouterr().out


def test_new_findings_exit_1_and_are_grouped_by_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys)
    assert code == 1
    assert "\nfakert/models/unguarded_import.py\n" in out
    assert "accel-import" in out and "sgl_kernel.dsv3_router_gemm" in out
    assert "portability: sglang 1.2.3" in out  # version read from the dist-info beside --source


def test_written_baseline_makes_the_same_run_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.json"
    assert run(capsys, "--write-baseline", str(baseline))[0] == 0
    keys = json.loads(baseline.read_text())
    assert "platform-only-attr:fakert/models/quant_attrs.py:Attention._gfx95_quant_format" in keys
    code, out = run(capsys, "--baseline", str(baseline))
    assert code == 0
    assert " 0 new, " in out


def test_baseline_keys_survive_line_shifts_but_not_new_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.json"
    run(capsys, "--write-baseline", str(baseline))
    keys = json.loads(baseline.read_text())
    keys.remove("accel-import:fakert/models/unguarded_import.py:sgl_kernel.dsv3_router_gemm")
    baseline.write_text(json.dumps(keys))
    code, out = run(capsys, "--baseline", str(baseline))
    assert code == 1
    assert " 1 new, " in out


def test_suppressed_findings_are_counted_in_the_json_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "portability.json"
    run(capsys, "--suppressions", str(SUPPRESSIONS_YAML), "--json", str(out_json))
    record = json.loads(out_json.read_text())
    assert record["version"] == "1.2.3"
    assert record["counts"]["suppressed"] == 3  # two inline markers, one file entry
    statuses = {f["key"]: f["status"] for f in record["findings"]}
    assert statuses["accel-import:fakert/models/suppressed_by_file.py:deep_gemm"] == "suppressed"
    assert record["counts"]["new"] == sum(1 for f in record["findings"] if f["status"] == "new")


def test_usage_errors_exit_2_and_name_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--source", str(tmp_path)]) == 2
    assert "has no 'sglang' directory" in capsys.readouterr().err
    assert main([*BASE, "--baseline", str(tmp_path / "missing.json")]) == 2
    assert "create it with --write-baseline" in capsys.readouterr().err
