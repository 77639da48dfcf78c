"""Trend charts over the history (inline SVG drawn by the template), its cache, and retention."""
from __future__ import annotations

import json
import re

from harness.cli import main
from harness.reports.builder import ReportInputs, render_run
from harness.reports.trends import CACHE_DIR, build_trends, summarize
from tests.reportruns import TODAY, rec, write_run


def night(root, i, status="pass", boot=10.0):
    run_id = f"202611{10 + i:02d}T020000Z-{i:04x}"
    return write_run(root / "history" / run_id, [
        rec("hf-npu-m-none", "accuracy", status, boot_s=boot),
        rec("hf-npu-m-none", "weight_parity", "pass", metrics={"tensors_compared": 3, "max_abs": 1e-7 * i}, boot_s=boot),
    ], run_id=run_id, started=f"2026-11-{10 + i:02d}T02:00:00+00:00")


def test_trend_geometry_is_numbers_and_skips_missing_values():
    runs = [summarize(f"r{i}", f"2026-11-{i:02d}", [{"cell": "c", "check": "accuracy", "status": s,
                                                      "metrics": {"pass_rate": v} if v is not None else {}}])
            for i, (s, v) in enumerate([("pass", 1.0), ("fail", None), ("pass", 0.5)], start=1)]
    t = build_trends(runs)
    assert [b.run_id for b in t.bars] == ["r1", "r2", "r3"] and t.bars[1].segments[0][0] == "fail"
    acc = next(c for c in t.lines if c.title.startswith("accuracy"))
    assert len(acc.lines) == 2 and len(acc.points) == 2  # the gap splits the line
    assert all(isinstance(v, float) for seg in acc.lines for pt in seg for v in pt)
    assert (acc.top, acc.bottom) == ("1.000", "0.500")


def test_report_draws_the_history_and_caches_each_run(tmp_path):
    for i in range(1, 6):
        night(tmp_path, i, status="fail" if i >= 4 else "pass", boot=10.0 + i)
    latest = write_run(tmp_path / "latest", [rec("hf-npu-m-none", "accuracy", "fail"), rec("hf-npu-m-none", "weight_parity", "pass")],
                       run_id="20261120T020000Z-ffff", started="2026-11-20T02:00:00+00:00")
    html = render_run(ReportInputs(run_dir=latest, today=TODAY, environ={})).index.read_text()
    trends = html[html.index('<section id="trends">'):html.index('<section id="drilldown">')]
    assert trends.count("<svg") >= 3 and "<polyline" in trends
    assert len(re.findall(r"<rect ", trends)) == 3 * 1 + 3 * 2  # pass, or pass + fail
    assert "failing 3 runs in a row" in html  # the blocker says how long it has been red
    cached = sorted(p.name for p in (tmp_path / "history" / CACHE_DIR).iterdir())
    assert len(cached) == 6 and "20261120T020000Z-ffff.json" in cached  # the current run is cached for tomorrow
    data = json.loads((tmp_path / "history" / CACHE_DIR / cached[0]).read_text())
    assert data["statuses"] == {"hf-npu-m-none::accuracy": "pass", "hf-npu-m-none::weight_parity": "pass"}


def test_keep_prunes_the_history(tmp_path, capsys):
    for i in range(1, 6):
        night(tmp_path, i)
    latest = write_run(tmp_path / "latest", [rec("hf-npu-m-none", "accuracy", "pass"), rec("hf-npu-m-none", "weight_parity", "pass")])
    assert main(["report", str(latest), "--keep", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "history").iterdir() if not p.name.startswith(".")) == [
        "20261114T020000Z-0004", "20261115T020000Z-0005"]


def test_a_report_without_history_writes_nothing_outside_its_run_directory(tmp_path):
    work = tmp_path / "work"
    out = write_run(work / "out", [rec("hf-npu-m-none", "accuracy", "pass"), rec("hf-npu-m-none", "weight_parity", "pass")])
    before = sorted(p.name for p in out.iterdir())
    assert main(["report", str(out)]) == 0
    assert sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if not p.is_relative_to(out)) == []
    assert {"index.html", "summary.md", "junit.xml"} <= {p.name for p in out.iterdir()} - set(before)
    # once a history exists (the previous run archived there), its trend cache lives inside it
    night(work, 1)
    assert main(["report", str(out)]) == 0
    assert sorted(p.name for p in (work / "history").iterdir()) == [".trend-cache", "20261111T020000Z-0001"]
