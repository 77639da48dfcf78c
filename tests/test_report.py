"""The HTML report, parsed back: grid, verdict, escaping of anything a model or log produced."""
from __future__ import annotations

from pathlib import Path

from harness.reports.builder import build_report
from harness.results import ResultRecord, ResultWriter, write_json_atomic
from tests.htmlgrid import parse_report


def rec(cell: str, check: str, status: str, **kw) -> ResultRecord:
    runtime, device, model, offload = cell.split("-", 3)[0], cell.split("-")[1], "tiny-llama", cell.rsplit("-", 1)[1]
    return ResultRecord(run_id="r1", cell=cell, runtime=runtime, device=device, model=model, offload=offload,
                        check=check, status=status, **kw)


def make_run(tmp_path: Path, records: list[ResultRecord], status: str = "complete") -> Path:
    write_json_atomic(tmp_path / "manifest.json", {"run_id": "r1", "status": status, "started": "t0"})
    w = ResultWriter(tmp_path / "results.jsonl")
    for r in records:
        w.write(r)
    return build_report(tmp_path)


def test_grid_shows_every_cell_and_check_with_status(tmp_path):
    path = make_run(tmp_path, [
        rec("hf-cpu-tiny-llama-none", "accuracy", "pass", metrics={"correct": 10, "total": 10}),
        rec("hf-cpu-tiny-llama-none", "weight_parity", "pass", metrics={"tensors_compared": 21, "max_abs": 0.0}),
        rec("hf-cpu-tiny-llama-cpu", "accuracy", "na", reason="cpu offload means nothing on cpu"),
        rec("hf-cpu-tiny-llama-disk", "accuracy", "fail", reason="wrong-answer: 3/10"),
    ])
    page = parse_report(path.read_text())
    assert page.rows == {"hf-cpu-tiny-llama-none": "pass", "hf-cpu-tiny-llama-cpu": "na", "hf-cpu-tiny-llama-disk": "fail"}
    assert page.results[("hf-cpu-tiny-llama-disk", "accuracy")] == "fail"
    assert page.verdict.split()[0] == "NO-GO" and page.verdict_word == "NO-GO"
    assert "10/10" in path.read_text()


def test_all_green_says_go_and_interrupted_says_no_go(tmp_path):
    ok = [rec("hf-cpu-tiny-llama-none", "accuracy", "pass")]
    assert parse_report(make_run(tmp_path / "a", ok).read_text()).verdict.split()[0] == "GO"
    page = parse_report(make_run(tmp_path / "b", ok, status="interrupted").read_text())
    assert page.verdict.split()[0] == "NO-GO" and page.blockers == {"::": "incomplete"}


def test_model_output_and_logs_are_rendered_inert(tmp_path):
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    path = make_run(tmp_path, [
        rec("hf-cpu-tiny-llama-none", "accuracy", "fail", reason=f"wrong-answer: got {evil}", log_tail=evil,
            details={"answers": [{"prompt": evil, "expected": "Paris", "got": evil, "ok": False}]}),
    ])
    html = path.read_text()
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert parse_report(html).scripts == 0


def test_report_is_self_contained(tmp_path):
    html = make_run(tmp_path, [rec("hf-cpu-tiny-llama-none", "accuracy", "pass")]).read_text()
    page = parse_report(html)
    assert page.external == [] and page.scripts == 0  # nothing is fetched: no link, img, script, iframe
    assert "url(" not in html and "@import" not in html and "http://" not in html and "https://" not in html
