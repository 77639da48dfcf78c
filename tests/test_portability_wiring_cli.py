"""`harness portability` from the `harness` command: exit 1 on a new finding, 0 once it is baselined.

The runtime here is a small synthetic ``sglang`` package written to a temporary directory (one
model imports a CUDA-only kernel at module level); ``fake_runtime`` is shared with the suite tests.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

BAD_KEY = "accel-import:sglang/srt/models/bad_model.py:flashinfer.rmsnorm"
_PACKAGES = {"sglang": ("sglang/srt/models", "sglang/srt/layers"),
             "vllm": ("vllm/model_executor/models", "vllm/model_executor/layers")}


def fake_runtime(root: Path, name: str, version: str, *, bad: bool) -> Path:
    """Write an installed-looking ``name`` package (and its dist-info) under ``root``; returns ``root``.

    ``bad``: one model imports the CUDA-only ``flashinfer`` at module level (line 3), which
    breaks importing it on every other device.
    """
    for package in _PACKAGES[name]:
        parts = Path(package).parts
        for depth in range(1, len(parts) + 1):
            init = root.joinpath(*parts[:depth], "__init__.py")
            init.parent.mkdir(parents=True, exist_ok=True)
            init.touch()
    models = root / _PACKAGES[name][0]
    (models / "plain_model.py").write_text('"""Imports on every device."""\nimport math\n\n\ndef norm(x):\n    return math.sqrt(x)\n')
    if bad:
        (models / "bad_model.py").write_text(
            '"""A CUDA-only kernel at module level."""\n\nfrom flashinfer import rmsnorm\n\n\n'
            'def forward(x):\n    return rmsnorm(x)\n')
    dist = root / f"{name}-{version}.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (dist / "top_level.txt").write_text(f"{name}\n")
    return root


def portability(*args: str) -> int:
    return main(["portability", "--runtime", "sglang", "--jobs", "1", *args])


def test_a_new_finding_exits_1_and_says_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = fake_runtime(tmp_path / "src", "sglang", "0.0.1", bad=True)
    assert portability("--source", str(src)) == 1
    out = capsys.readouterr().out
    assert "sglang/srt/models/bad_model.py" in out and "flashinfer" in out
    assert "1 finding(s): 1 new, 0 baselined" in out


def test_a_baselined_finding_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = fake_runtime(tmp_path / "src", "sglang", "0.0.1", bad=True)
    baseline = tmp_path / "baseline.json"
    assert portability("--source", str(src), "--write-baseline", str(baseline)) == 0
    assert json.loads(baseline.read_text()) == [BAD_KEY]
    assert portability("--source", str(src), "--baseline", str(baseline), "--json", str(tmp_path / "r.json")) == 0
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["counts"]["new"] == 0 and record["counts"]["baselined"] == 1


def test_a_clean_package_exits_0_and_a_regression_against_its_baseline_exits_1(tmp_path: Path) -> None:
    clean = fake_runtime(tmp_path / "clean", "sglang", "0.0.1", bad=False)
    baseline = tmp_path / "baseline.json"
    assert portability("--source", str(clean), "--write-baseline", str(baseline)) == 0
    assert json.loads(baseline.read_text()) == []
    assert portability("--source", str(clean), "--baseline", str(baseline)) == 0
    regressed = fake_runtime(tmp_path / "regressed", "sglang", "0.0.2", bad=True)
    assert portability("--source", str(regressed), "--baseline", str(baseline)) == 1


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert portability("--source", str(tmp_path)) == 2
    assert "has no 'sglang' directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["portability", "--runtime", "no-such-runtime"])
    assert exc.value.code == 2
    assert "invalid choice: 'no-such-runtime'" in capsys.readouterr().err


def test_the_installed_command_passes_every_argument_through(tmp_path: Path) -> None:
    src = fake_runtime(tmp_path / "src", "sglang", "0.0.1", bad=True)
    cmd = [sys.executable, "-m", "harness.cli", "portability", "--runtime", "sglang", "--source", str(src), "--jobs", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "bad_model.py" in done.stdout
    helped = subprocess.run([sys.executable, "-m", "harness.cli", "portability", "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "usage: harness portability" in helped.stdout
