"""A NO-GO's regression rows, and a run's new portability findings, show the `harness bisect` command to run."""
from __future__ import annotations

import shlex
from html.parser import HTMLParser
from pathlib import Path

from harness.cli import _parser
from harness.reports.builder import build_report
from harness.reports.diff import diff_runs
from harness.reports.portability import portability_section
from tests.reportruns import rec, write_run

CELL = "sglang-npu-tiny-llama-none"


def fp(version: str) -> dict[str, str]:
    return {"runtime": "sglang", "version": version}


def changes(before, now):
    return {(c.cell, c.check): c for c in diff_runs(now, before, baseline_id="b", baseline_path="/b", chosen_because="given").changes}


def test_a_new_failure_carries_the_command_between_the_two_runtime_versions():
    before = [rec(CELL, "accuracy", "pass", fingerprint=fp("0.5.9")), rec(CELL, "weight_parity", "fail", fingerprint=fp("0.5.9"))]
    now = [rec(CELL, "accuracy", "fail", fingerprint=fp("0.5.12")), rec(CELL, "weight_parity", "pass", fingerprint=fp("0.5.12"))]
    got = changes(before, now)
    assert got[(CELL, "accuracy")].bisect == (f"harness bisect --cell {CELL} --check accuracy "
                                              "--good sglang==0.5.9 --bad sglang==0.5.12")
    assert got[(CELL, "weight_parity")].bisect == ""  # fixed: nothing to bisect


def test_the_same_runtime_version_points_at_commits_of_a_checkout():
    got = changes([rec(CELL, "accuracy", "pass", fingerprint=fp("0.5.9"))], [rec(CELL, "accuracy", "fail", fingerprint=fp("0.5.9"))])
    assert "--source DIR --good GOOD_COMMIT --bad BAD_COMMIT" in got[(CELL, "accuracy")].bisect


def test_the_command_parses_as_harness_bisect():
    command = changes([rec(CELL, "accuracy", "pass", fingerprint=fp("0.5.9"))],
                      [rec(CELL, "accuracy", "fail", fingerprint=fp("0.5.12"))])[(CELL, "accuracy")].bisect
    args, rest = _parser().parse_known_args(shlex.split(command)[1:])
    assert (args.command, args.cell, args.check, args.good, args.bad, rest) == (
        "bisect", CELL, ["accuracy"], "sglang==0.5.9", "sglang==0.5.12", [])


class BisectRows(HTMLParser):
    """The text of ``div.bisect`` inside each ``tr[data-diff]`` / ``tr[data-finding]`` row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self._row: str | None = None
        self._in = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr":
            self._row = a.get("data-diff") and f"{a['data-diff']}:{a.get('data-ref')}" or a.get("data-finding")
        if tag == "div" and a.get("class") == "bisect" and self._row:
            self._in = True
            self.rows[self._row] = ""

    def handle_endtag(self, tag):
        if tag == "div":
            self._in = False

    def handle_data(self, data):
        if self._in and self._row:
            self.rows[self._row] += data


def test_the_html_report_shows_it_on_the_regression_row(tmp_path: Path):
    write_run(tmp_path / "history" / "20261123T020000Z-aaaa", [rec(CELL, "accuracy", "pass", fingerprint=fp("0.5.9"))],
              run_id="20261123T020000Z-aaaa", started="2026-11-23T02:00:00+00:00")
    run = write_run(tmp_path / "latest", [rec(CELL, "accuracy", "fail", fingerprint=fp("0.5.12"))],
                    run_id="20261124T020000Z-bbbb", started="2026-11-24T02:00:00+00:00")
    page = BisectRows()
    page.feed(build_report(run).read_text())
    assert page.rows == {f"new-failure:{CELL}::accuracy": "which release broke it: harness bisect --cell "
                         f"{CELL} --check accuracy --good sglang==0.5.9 --bad sglang==0.5.12"}
    assert "--good sglang==0.5.9 --bad sglang==0.5.12" in (run / "summary.md").read_text()


def test_a_new_portability_finding_carries_the_command_from_its_baseline_version():
    finding = {"rule": "accel-import", "path": "sglang/srt/x.py", "line": 3, "symbol": "flashinfer", "platforms": ["npu"],
               "hint": "h", "status": "new", "key": "accel-import:sglang/srt/x.py:flashinfer"}
    entry = {"runtime": "sglang", "version": "0.5.24", "findings": [finding],
             "baseline": {"path": "/b/sglang-0.5.23.json", "note": "newest older"}}
    (rt,) = portability_section(entry, "r").runtimes
    assert rt.findings[0].bisect == ("harness bisect --portability accel-import:sglang/srt/x.py:flashinfer "
                                     "--good sglang==0.5.23 --bad sglang==0.5.24")
    same = {**entry, "version": "0.5.23", "baseline": {"path": "/b/sglang-0.5.23.json"}}
    assert portability_section(same, "r").runtimes[0].findings[0].bisect == ""  # its own baseline: nothing to bisect
