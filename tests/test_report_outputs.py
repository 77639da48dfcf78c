"""HTML, Markdown and JUnit outputs: escaping of anything a model or log produced, and their structure."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.reports.builder import ReportInputs, render_run
from tests.htmlgrid import parse_report
from tests.reportruns import TODAY, rec, write_run

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>|**bold**|`tick`\x1b[31m\x00"


def outputs(tmp_path, records, **kw):
    run = write_run(tmp_path / "latest", records, **kw)
    return render_run(ReportInputs(run_dir=run, today=TODAY, environ={}))


def test_script_in_an_answer_a_log_tail_and_a_reason_is_inert_everywhere(tmp_path):
    out = outputs(tmp_path, [
        rec("hf-cpu-m-none", "accuracy", "fail", reason=f"wrong-answer: got {EVIL}", log_tail=EVIL, command=EVIL,
            details={"answers": [{"prompt": EVIL, "expected": "Paris", "got": EVIL, "ok": False}],
                     "deltas": [{"token": EVIL, "delta": 0.5}]}),
    ], host=EVIL)
    html = out.index.read_text()
    page = parse_report(html)
    assert page.scripts == 0 and page.external == []
    assert "<script>" not in html and "<img" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # reason, answer, log, command, generic table
    md = out.summary.read_text()
    assert "<script>" not in md and "<img" not in md and "&lt;script&gt;" in md
    assert "\\|\\*\\*bold\\*\\*\\|" in md  # Markdown table syntax in a reason cannot break the table
    junit = ET.parse(out.junit).getroot()  # parses: control characters are gone, markup escaped
    failure = junit.find(".//testcase[@classname='hf-cpu-m-none'][@name='accuracy']/failure")
    assert failure is not None and "<script>alert(1)</script>" in failure.text and "\x00" not in failure.text


def test_junit_has_one_testcase_per_cell_and_check_plus_the_verdict(tmp_path):
    out = outputs(tmp_path, [
        rec("hf-cpu-m-none", "accuracy", "pass", duration_s=1.5),
        rec("hf-cpu-m-none", "weight_parity", "fail", reason="parity: 3 tensors out of tolerance"),
        rec("hf-cpu-m-disk", "accuracy", "error", reason="boot-crash: exit 1", log_tail="Traceback (most recent call last)"),
        rec("hf-cpu-m-cpu", "accuracy", "na", reason="cpu offload on cpu"),
        rec("hf-npu-m-none", "accuracy", "skipped", reason="no npu device found"),
    ])
    root = ET.parse(out.junit).getroot()
    cases = {(tc.get("classname"), tc.get("name")): tc for tc in root.iter("testcase")}
    assert len(cases) == 6 and ("sign-off", "verdict") in cases
    assert cases[("hf-cpu-m-none", "accuracy")].get("time") == "1.5" and len(cases[("hf-cpu-m-none", "accuracy")]) == 0
    assert cases[("hf-cpu-m-none", "weight_parity")].find("failure").get("type") == "parity"
    error = cases[("hf-cpu-m-disk", "accuracy")].find("error")
    assert error.get("type") == "boot-crash" and "Traceback" in error.text
    assert cases[("hf-cpu-m-cpu", "accuracy")].find("skipped").get("message") == "N/A: cpu offload on cpu"
    assert cases[("hf-npu-m-none", "accuracy")].find("skipped").get("message") == "no npu device found"
    assert cases[("sign-off", "verdict")].find("failure").get("type") == "no-go"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("6", "2", "1", "2")


def test_markdown_says_go_with_counts_and_the_report_path(tmp_path):
    out = outputs(tmp_path, [rec("hf-cpu-m-none", "accuracy", "pass")])
    md = out.summary.read_text()
    assert md.startswith("## ✅ GO — conformance run r1")
    assert "pass 1 · fail 0" in md and f"`{out.index}`" in md and "No baseline" in md


def test_the_grid_marks_simulated_and_waived_results_and_the_drill_down_has_the_evidence(tmp_path):
    out = outputs(tmp_path, [
        rec("hf-npu-m-none", "accuracy", "pass", simulated=True, command="python server.py --device npu",
            details={"answers": [{"prompt": "The capital of France is", "expected": "Paris", "got": " Paris.", "ok": True}]}),
        rec("hf-npu-m-none", "weight_parity", "fail", reason="parity: 1 tensor", details={
            "worst": [{"name": "model.layers.0.mlp.experts.w1", "shape": [8, 4], "max_abs": 0.5, "max_rel": 1.0,
                       "cosine": 0.2, "frac_outside": 0.9, "ok": False, "note": "transposed"}], "unavailable": ["rotary.inv_freq"]}),
    ])
    html = out.index.read_text()
    page = parse_report(html)
    assert page.drills == {"hf-npu-m-none": True}
    for text in ("simulated", "python server.py --device npu", "The capital of France is", "model.layers.0.mlp.experts.w1",
                 "8×4", "rotary.inv_freq", "simulated devices"):
        assert text in html, text


def test_logprob_parity_evidence_is_a_table_and_its_figure_the_worst_delta(tmp_path):
    out = outputs(tmp_path, [rec("hf-npu-m-none", "logprob_parity", "fail", reason="parity: logprobs vs reference",
                                 metrics={"max_abs_delta": 0.25, "token_agreement": 0.9},
                                 details={"reference_path": "/refs/tiny.json", "prompts": [
                                     {"prompt": "The capital of France is", "max_abs_delta": 0.25, "worst_step": 2,
                                      "divergence": {"step": 2, "reference": "Paris", "runtime": "Lyon"}}]})])
    html = out.index.read_text()
    assert "max|Δ| 0.25" in html and 'data-detail="prompts"' in html
    assert "step=2, reference=Paris, runtime=Lyon" in html and "reference_path" not in html  # no raw key dumps
    figures = parse_report(html).figures["hf-npu-m-none::logprob_parity"]
    assert figures["reference file"] == "/refs/tiny.json" and figures["max |Δ logprob|"] == "0.25"
    assert figures["tokens agree"] == "90%"


def test_weight_parity_by_digest_shows_digest_counts_and_the_differing_tensor(tmp_path):
    metrics = {"tensors_compared": 0, "max_abs": None, "tensors_by_digest": 45, "tensors_digest_differs": 4}
    digests = [{"runtime_name": "model.layers.1.mlp.experts.w2_weight", "members": ["a", "b", "c", "d"], "ok": False,
                "expected": "98d3f97b2e85727f", "got": "25fa2782da309428"}]
    out = outputs(tmp_path, [rec("sglang-cpu-m-none", "weight_parity", "fail", reason="parity: 1/21 runtime tensors differ",
                                 metrics=metrics, details={"digests": digests})])
    html = out.index.read_text()
    assert "45 by digest, 4 differ" in html and "0 tensors, max" not in html
    assert 'data-detail="digests"' in html and "model.layers.1.mlp.experts.w2_weight" in html
