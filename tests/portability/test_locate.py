"""Locating an installed runtime through its own interpreter, without importing it."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from harness.portability.cli import main
from harness.portability.locate import RuntimeLocateError, locate_runtime
from tests.portability.support import PROFILE_YAML, SRC


@pytest.fixture
def runtime_python(tmp_path: Path) -> str:
    """An interpreter of a 'runtime environment' where fakert (and a stub kernel) is installed."""
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{SRC}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


def test_finds_the_source_root_and_version_without_importing(runtime_python: str) -> None:
    found = locate_runtime(runtime_python, "fakert", "fakert")
    assert found.root == SRC
    assert found.version == "1.2.3"


def test_missing_package_says_how_to_fix(runtime_python: str) -> None:
    with pytest.raises(RuntimeLocateError, match="--runtime-python"):
        locate_runtime(runtime_python, "not_installed_anywhere", "not_installed_anywhere")


def test_cli_probes_an_installed_runtime_by_default(
    runtime_python: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "result.json"
    code = main(["--runtime-python", runtime_python, "--profile", str(PROFILE_YAML),
                 "--jobs", "1", "--json", str(out_json)])
    assert code == 1
    record = json.loads(out_json.read_text())
    assert record["probe"]["modules"] == len(list((SRC / "fakert" / "models").glob("*.py"))) + len(
        list((SRC / "fakert" / "layers").glob("*.py")))
    probe_findings = [f for f in record["findings"] if f["rule"] == "import-probe"]
    locations = {(f["path"], f["line"], f["symbol"]) for f in probe_findings}
    assert ("fakert/models/unguarded_import.py", 3, "sgl_kernel") in locations
    # rocm_only.py fails without aiter too, but it is only imported under `if _is_hip:`
    assert record["probe_expected"] == ["fakert.layers.rocm_only"]
    assert not any(path.endswith("rocm_only.py") for path, _, _ in locations)
    assert "probe:" in capsys.readouterr().out
    assert os.environ.get("FAKERT_PLATFORM") is None  # the probe never touched our environment
