"""The report's first screen: verdict title with coverage, the heatmap, failing cells first, skipped models folded,
figures for people and real links (parsed from the HTML and Markdown, never compared as whole strings)."""
from __future__ import annotations

import re

from harness.reports.builder import ReportInputs, render_run
from harness.reports.figures import number, percent, seconds
from tests.htmlgrid import parse_report
from tests.reportruns import TODAY, rec, write_run

NO_CKPT = "model big needs a local checkpoint: set HARNESS_MODEL_ROOT"
NO_NPU = "no NPU device: looked with torch_npu"


def render(tmp_path, records):
    return render_run(ReportInputs(run_dir=write_run(tmp_path / "latest", records), today=TODAY, environ={}))


def cpu_only_run() -> list:
    """tiny ran on the CPU (one cell fails weight parity); the NPU and a model without a checkpoint were skipped."""
    out = [rec("hf-cpu-tiny-none", "accuracy", "pass", duration_s=4.23, log_path="/runs/x/logs/hf-cpu-tiny-none.log"),
           rec("hf-cpu-tiny-none", "weight_parity", "pass", metrics={"tensors_compared": 21, "max_abs": 3.1e-07}),
           rec("hf-cpu-tiny-disk", "accuracy", "pass"),
           rec("hf-cpu-tiny-disk", "weight_parity", "fail", reason="parity: 2 tensors out of tolerance",
               metrics={"tensors_compared": 21, "tensors_failed": 2, "max_abs": 0.5}),
           rec("hf-cpu-tiny-cpu", "accuracy", "na", reason="cpu offload on cpu")]
    out += [rec(f"hf-npu-tiny-{o}", "accuracy", "skipped", reason=NO_NPU) for o in ("none", "disk")]
    out += [rec(f"hf-{d}-big-{o}", c, "skipped", reason=NO_CKPT)
            for d in ("cpu", "npu") for o in ("none", "disk") for c in ("accuracy", "weight_parity")]
    return out


def test_a_go_on_part_of_the_matrix_is_titled_and_coloured_apart_from_a_full_go(tmp_path):
    records = [r for r in cpu_only_run() if r.status != "fail"]
    page = parse_report(render(tmp_path / "part", records).index.read_text())
    assert page.verdict_word == "GO" and page.verdict_title == "GO on cpu only"
    assert "partial" in page.verdict_class.split() and "go" not in page.verdict_class.split()
    assert page.coverage[("device", "cpu")] == (2, 4) and page.coverage[("device", "npu")] == (0, 4)
    full = parse_report(render(tmp_path / "full", [rec("hf-cpu-tiny-none", "accuracy", "pass")]).index.read_text())
    assert full.verdict_title == "GO" and "go" in full.verdict_class.split()
    assert "partial" not in full.verdict_class.split()


def test_the_heatmap_has_a_square_per_model_and_device_offload_linking_to_its_cell(tmp_path):
    page = parse_report(render(tmp_path, cpu_only_run()).index.read_text())
    assert set(page.heat) == {"tiny", "big"}
    assert page.heat_columns == ["none", "cpu", "disk", "none", "disk"]  # cpu: none cpu disk · npu: none disk
    tiny = dict(zip(page.heat_columns[:3], page.heat["tiny"][:3]))
    assert tiny["none"] == ("pass", "#drill-hf-cpu-tiny-none") and tiny["disk"] == ("fail", "#drill-hf-cpu-tiny-disk")
    assert tiny["cpu"][0] == "na" and page.heat["tiny"][3][0] == "skipped"
    assert page.heat["big"][1] == ("absent", "")  # big has no cpu·cpu cell
    assert {href for _, href in page.heat["tiny"] if href} <= {f"#drill-{c}" for c in page.drills}


def test_cells_that_ran_come_first_failing_first_and_a_skipped_model_is_one_line(tmp_path):
    out = render(tmp_path, cpu_only_run())
    page = parse_report(out.index.read_text())
    order = list(page.rows)
    assert order[:2] == ["hf-cpu-tiny-disk", "hf-cpu-tiny-none"]  # the failing cell first
    assert set(page.rows) == {r.cell for r in cpu_only_run()}  # folded rows are still in the page
    assert list(page.idle_models) == ["big"]
    line = page.idle_models["big"]
    assert "4 cells skipped" in line and NO_CKPT in line and line.count(NO_CKPT) == 1
    md = out.summary.read_text()
    big = re.findall(r"^- `big`: (.*)$", md, re.M)  # one line for the model, not one per cell
    assert len(big) == 1 and big[0].startswith("4 cells skipped: " + NO_CKPT.replace("_", "\\_"))


def test_figures_are_formatted_for_people_and_links_are_relative(tmp_path):
    page = parse_report(render(tmp_path, cpu_only_run()).index.read_text())
    acc = page.figures["hf-cpu-tiny-none::accuracy"]
    assert acc["correct"] == "12/12 (100%)" and acc["took"] == "4.2 s"
    parity = page.figures["hf-cpu-tiny-none::weight_parity"]
    assert parity["max |Δ|"] == "3.1e-7" and parity["by value"] == "21 tensors"
    assert page.figures["hf-cpu-tiny-disk::weight_parity"]["by value"] == "21 tensors, 2 out of tolerance"
    assert not any(k in f for f in page.figures.values() for k in ("tensors_compared", "max_abs", "pass_rate"))
    assert "logs/hf-cpu-tiny-none.log" in page.links and "results.jsonl" in page.links


def test_markdown_starts_with_the_title_and_the_coverage_line(tmp_path):
    md = render(tmp_path, [r for r in cpu_only_run() if r.status != "fail"]).summary.read_text().splitlines()
    assert md[0].startswith("## ⚠️ GO on cpu only — conformance run")
    assert md[2].startswith("**") and "ran 2 of 8 planned cells: cpu 2/4 · npu 0/4**" in md[2]
    assert sum(line.count("ran 2 of 8 planned cells") for line in md) == 1  # said once, in the headline


def test_number_seconds_and_percent():
    assert [number(v) for v in (3.1e-07, 0.5, 1.0, 12, None, 0.123456, True)] == ["3.1e-7", "0.5", "1", "12", "", "0.123", "yes"]
    assert [seconds(v) for v in (4.23, 0.055, 125, None)] == ["4.2 s", "55 ms", "2 min 5 s", ""]
    assert [percent(v) for v in (1.0, 0.905, None)] == ["100%", "90.5%", ""]


def test_failures_with_one_root_cause_are_one_row_of_the_causes_table(tmp_path):
    from html.parser import HTMLParser

    crash = "boot-crash: ModuleNotFoundError: No module named 'sglang' (exit code 1)"
    recs = [rec(f"sglang-cpu-m{i}-none", check, "error", reason=crash) for i in range(4)
            for check in ("accuracy", "weight_parity")]
    recs.append(rec("hf-cpu-m0-none", "accuracy", "fail", reason="wrong-answer: 5/12"))

    class Causes(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[str] = []

        def handle_starttag(self, tag, attrs):
            if dict(attrs).get("data-cause-count"):
                self.rows.append(dict(attrs)["data-cause-count"])

    page = Causes()
    page.feed(render(tmp_path, recs).index.read_text())
    assert page.rows == ["4", "1"]  # four cells, one cause; then the other failure
