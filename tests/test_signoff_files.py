"""Bad policy and waivers files: one clear error naming the file, the line, the field and the fix."""
from __future__ import annotations

import pytest

from harness.cli import main
from harness.reports.policy import Policy
from harness.reports.waivers import load_waivers
from harness.reports.yamlfile import SpecFileError

GOOD_WAIVER = """schema: 1
waivers:
  - cells: "*-npu-*"
    check: accuracy
    reason: known
    issue: https://example.org/issues/1
    expires: 2026-12-31
"""


@pytest.mark.parametrize("text, line, field, fix", [
    (GOOD_WAIVER.replace("2026-12-31", "2026-13-01"), 7, "waivers[0].expires", "expires: 2026-12-31"),
    (GOOD_WAIVER.replace("    expires: 2026-12-31\n", ""), 3, "waivers[0]", "add expires:"),
    (GOOD_WAIVER.replace("issue: https://example.org/issues/1", "issue: soon"), 6, "waivers[0].issue", "write a URL"),
    (GOOD_WAIVER.replace("reason: known", "reason: ''"), 5, "waivers[0].reason", "say why"),
    (GOOD_WAIVER.replace("check: accuracy", "checks: accuracy"), 4, "waivers[0].checks", "use only"),
    (GOOD_WAIVER.replace('cells: "*-npu-*"', "cells: []"), 3, "waivers[0].cells", "cells: '*-npu-*'"),
    (GOOD_WAIVER.replace("schema: 1", "schema: 3"), 1, "schema", "write schema: 1"),
    ("waivers:\n  - cells: [a\n", 3, "waivers", "YAML syntax"),
    ("- just a list\n", 1, "waivers", "start from"),
])
def test_bad_waivers(tmp_path, text, line, field, fix):
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    with pytest.raises(SpecFileError) as err:
        load_waivers(path)
    where, _, fix_text = str(err.value).partition("; fix: ")
    assert where.startswith(f"{path}:{line}: {field}: ") and fix in fix_text
    assert err.value.line == line and err.value.field == field


GOOD_POLICY = """schema: 1
name: NPU
required:
  - cells: ["*-npu-*"]
    checks: [accuracy]
tolerances:
  boot_s: {abs: 5}
"""


@pytest.mark.parametrize("text, line, field, problem", [
    (GOOD_POLICY.replace("checks: [accuracy]", "checks: 7"), 5, "required[0].checks", "expected a pattern or a list"),
    (GOOD_POLICY.replace("    checks: [accuracy]\n", ""), 4, "required[0]", "missing required field 'checks'"),
    (GOOD_POLICY.replace("required:", "requires:"), 3, "requires", "unknown field 'requires'"),
    (GOOD_POLICY.replace("boot_s", "boot_time"), 7, "tolerances.boot_time", "unknown metric 'boot_time'"),
    (GOOD_POLICY.replace("{abs: 5}", "{abs: -1}"), 7, "tolerances.boot_s", "non-negative number, got -1"),
    (GOOD_POLICY + "require_complete: sometimes\n", 8, "require_complete", "expected true or false"),
    (GOOD_POLICY.replace("required:\n  - cells: [\"*-npu-*\"]\n    checks: [accuracy]\n", "required: []\n"),
     3, "required", "non-empty list"),
])
def test_bad_policies(tmp_path, text, line, field, problem):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(SpecFileError) as err:
        Policy.from_file(path)
    where, _, fix_text = str(err.value).partition("; fix: ")
    assert where.startswith(f"{path}:{line}: {field}: ") and problem in where and fix_text


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(SpecFileError, match=r"policy: cannot read the file .*fix: pass an existing policy file, e.g. .*policy.yaml"):
        Policy.from_file(tmp_path / "nope.yaml")


def test_the_cli_prints_one_error_and_exits_2(tmp_path, capsys):
    from tests.reportruns import rec, write_run

    run = write_run(tmp_path / "latest", [rec("hf-cpu-m-none", "accuracy", "pass")])
    bad = tmp_path / "waivers.yaml"
    bad.write_text(GOOD_WAIVER.replace("2026-12-31", "someday"))
    assert main(["report", str(run), "--waivers", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"harness report: {bad}:7: waivers[0].expires: expected a date YYYY-MM-DD, got 'someday'; "
                   "fix: write e.g. expires: 2026-12-31"]
    assert not (run / "index.html").exists()


def test_at_the_end_of_a_run_a_bad_policy_still_renders_the_report_as_no_go(tmp_path, monkeypatch):
    from harness.reports.builder import build_report
    from tests.htmlgrid import parse_report
    from tests.reportruns import rec, write_run

    run = write_run(tmp_path / "latest", [rec("hf-cpu-m-none", "accuracy", "pass")])
    bad = tmp_path / "policy.yaml"
    bad.write_text("required: nope\n")
    monkeypatch.setenv("HARNESS_POLICY", str(bad))
    page = parse_report(build_report(run).read_text())
    assert page.verdict_word == "NO-GO" and page.blockers == {"::": "config"}
    assert f"{bad}:1: required: expected a non-empty list" in (run / "index.html").read_text()
    assert (run / "summary.md").read_text().startswith("## ❌ NO-GO")
