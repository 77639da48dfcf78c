"""Issue 7 acceptance: two stored nights, one regression and one fix; waivers flip the verdict.

Every output says the same thing: the HTML (parsed), summary.md, junit.xml and the exit code.
"""
from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.reports.builder import ReportInputs, render_run
from tests.htmlgrid import parse_report
from tests.reportruns import TODAY, nightly_pair, waiver_file

REGRESSION = "hf-npu-tiny-llama-none::accuracy"
FIX = "hf-npu-tiny-llama-disk::accuracy"


@pytest.fixture
def nights(tmp_path: Path) -> Path:
    _, now = nightly_pair(tmp_path)
    return now


def render(run: Path, **kw) -> tuple[object, str, str, ET.Element]:
    out = render_run(ReportInputs(run_dir=run, today=TODAY, environ={}, **kw))
    return out, out.index.read_text(), out.summary.read_text(), ET.parse(out.junit).getroot()


def test_regression_and_fix_are_in_the_diff_and_the_verdict_is_no_go(nights):
    out, html, md, junit = render(nights)
    page = parse_report(html)
    assert page.verdict_word == "NO-GO" and page.verdict.split()[0] == "NO-GO"
    assert page.diff["new-failure"] == [REGRESSION]
    assert page.diff["fixed"] == [FIX]
    assert page.blockers == {REGRESSION: "fail"}
    assert page.changes[("hf-npu-tiny-llama-none", "accuracy")] == "new-failure"
    assert page.changes[("hf-npu-tiny-llama-disk", "accuracy")] == "fixed"
    assert page.drills["hf-npu-tiny-llama-none"] is True  # the broken cell's drill-down is open
    assert "20261123T020000Z-aaaa" in html  # which run it is compared with
    assert md.startswith("## ❌ NO-GO")
    assert "▼ new failure | `hf-npu-tiny-llama-none` | accuracy" in md
    assert "▲ fixed | `hf-npu-tiny-llama-disk` | accuracy" in md
    verdict = junit.find("./testsuite[@name='sign-off']/testcase/failure")
    assert verdict is not None and "hf-npu-tiny-llama-none" in (verdict.text or "")


def test_a_valid_waiver_for_the_regression_makes_it_go(nights, tmp_path):
    waivers = waiver_file(tmp_path / "waivers.yaml", expires="2026-12-31")
    out, html, md, junit = render(nights, waivers=waivers)
    page = parse_report(html)
    assert page.verdict_word == "GO" and page.blockers == {}
    assert page.waived == [REGRESSION]
    assert page.diff["new-failure"] == [REGRESSION]  # still a regression: waived, not hidden
    assert md.startswith("## ✅ GO") and "1 waived" in md
    assert junit.find("./testsuite[@name='sign-off']/testcase/failure") is None


def test_the_same_waiver_once_expired_is_no_go_again(nights, tmp_path):
    waivers = waiver_file(tmp_path / "waivers.yaml", expires="2026-11-23")  # the day before TODAY
    out, html, md, _ = render(nights, waivers=waivers)
    page = parse_report(html)
    assert page.verdict_word == "NO-GO" and page.blockers == {REGRESSION: "fail"}
    assert "waiver expired on 2026-11-23" in html
    assert md.startswith("## ❌ NO-GO") and "waiver expired 2026-11-23" in md
    assert page.waived == [] and page.stale == []


def test_the_waiver_is_valid_through_its_expiry_day(nights, tmp_path):
    waivers = waiver_file(tmp_path / "waivers.yaml", expires=TODAY.isoformat())
    assert render(nights, waivers=waivers)[0].verdict == "GO"


def test_cli_gates_on_the_verdict_and_prints_the_report_path_last(nights, tmp_path, capsys):
    assert main(["report", str(nights)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"Report: {nights / 'index.html'}"
    assert lines[0].startswith("Verdict: NO-GO") and any(REGRESSION.replace("::", " ") in ln for ln in lines)
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    assert main(["report", str(nights), "--waivers", str(waiver_file(tmp_path / "w.yaml", expires=later))]) == 0
    assert capsys.readouterr().out.strip().splitlines()[0].startswith("Verdict: GO")
    earlier = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    assert main(["report", str(nights), "--waivers", str(waiver_file(tmp_path / "w.yaml", expires=earlier))]) == 1
