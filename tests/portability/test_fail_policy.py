"""Only new *breaks* findings fail by default; ``--fail-on`` promotes others; lines and GitHub annotations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.portability.cli import main
from harness.portability.formats import render_github
from tests.portability.support import REACH, REACH_PROFILE_YAML

BASE = ["--source", str(REACH), "--profile", str(REACH_PROFILE_YAML), "--jobs", "1"]


@pytest.fixture(scope="module")
def breaks_accepted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A baseline holding the *breaks* findings only: what is left new is option and latent."""
    out = tmp_path_factory.mktemp("policy") / "record.json"
    assert main([*BASE, "--json", str(out), "--format", "lines"]) == 1
    record = json.loads(out.read_text())
    baseline = out.with_name("baseline.json")
    baseline.write_text(json.dumps(sorted({f["key"] for f in record["findings"] if f["severity"] == "breaks"})))
    return baseline


def test_new_option_and_latent_findings_are_listed_but_do_not_fail(breaks_accepted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--baseline", str(breaks_accepted)]) == 0
    out = capsys.readouterr().out
    assert "latent" in out and "option" in out
    assert "by severity: 7 breaks, 3 option, 5 latent; 0 fail the check (new and breaks)" in out


def test_a_policy_promotes_option_findings(breaks_accepted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--baseline", str(breaks_accepted), "--fail-on", "breaks,option"]) == 1
    assert "2 fail the check (new and breaks/option)" in capsys.readouterr().out  # norm.py:58 shares a breaks key
    assert main([*BASE, "--fail-on", "sometimes"]) == 2
    assert "--fail-on takes severities from ['breaks', 'option', 'latent']" in capsys.readouterr().err


def test_lines_format_is_path_line_rule_and_severity(capsys: pytest.CaptureFixture[str]) -> None:
    main([*BASE, "--format", "lines", "--path-prefix", "python/"])
    lines = capsys.readouterr().out.splitlines()
    assert "python/reachrt/models/mamba.py:2: platform-unbound-name [breaks] conv_fn on rocm, xpu, cpu: " in "\n".join(lines)
    assert all(line.startswith("python/reachrt/") and ": " in line for line in lines)


def test_github_annotations_are_errors_for_failing_findings_and_escaped() -> None:
    record = {"findings": [
        {"rule": "accel-import", "path": "a,b.py", "line": 3, "symbol": "x", "platforms": ["npu"], "hint": "50%\nfix",
         "status": "new", "severity": "breaks", "failing": True, "reach": "", "option": None},
        {"rule": "platform-unbound-name", "path": "c.py", "line": 9, "symbol": "y", "platforms": ["cpu"], "hint": "h",
         "status": "new", "severity": "latent", "failing": False, "reach": "r", "option": None},
    ]}
    error, warning = render_github(record, "python/").splitlines()
    assert error.startswith("::error file=python/a%2Cb.py,line=3,title=accel-import (breaks)::accel-import [breaks] x on npu: 50%25%0Afix")
    assert warning.startswith("::warning file=python/c.py,line=9,")
