"""Coverage is part of the verdict: what ran against what was planned, and policy `require:`."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.reports.coverage import Coverage, cell_state
from harness.reports.policy import CoverageRule, Policy
from harness.reports.signoff import evaluate
from harness.reports.yamlfile import SpecFileError
from tests.reportruns import TODAY, rec

NO_NPU = "no NPU device: looked with torch_npu"


def default_run() -> list:
    """Two CPU cells that ran (one N/A check), one N/A CPU cell, two NPU cells skipped for want of a device."""
    return [rec("hf-cpu-m-none", "accuracy", "pass"), rec("hf-cpu-m-none", "weight_parity", "na"),
            rec("hf-cpu-m-disk", "accuracy", "pass"), rec("hf-cpu-m-cpu", "accuracy", "na"),
            rec("hf-npu-m-none", "accuracy", "skipped", reason=NO_NPU),
            rec("hf-npu-m-disk", "accuracy", "skipped", reason=NO_NPU)]


def test_cells_that_ran_are_counted_against_the_planned_ones_per_device():
    cov = Coverage.from_records(default_run())
    assert (cov.planned, cov.ran) == (4, 2)  # the all-N/A cell is not planned
    cpu, npu = cov.axis("device")
    assert (cpu.value, cpu.planned, cpu.ran, cpu.complete) == ("cpu", 2, 2, True)
    assert (npu.value, npu.planned, npu.ran, npu.skip_reasons) == ("npu", 2, 0, ((NO_NPU, 2),))
    assert cov.line() == "ran 2 of 4 planned cells: cpu 2/2 · npu 0/2"
    assert cov.scope() == "cpu" and not cov.complete


def test_a_cell_state_is_ran_simulated_skipped_or_na():
    assert cell_state([rec("a-cpu-m-none", "x", "fail"), rec("a-cpu-m-none", "y", "skipped")]) == "ran"
    assert cell_state([rec("a-npu-m-none", "x", "pass", simulated=True)]) == "simulated"
    assert cell_state([rec("a-cpu-m-none", "x", "na"), rec("a-cpu-m-none", "y", "skipped")]) == "skipped"
    assert cell_state([rec("a-cpu-m-cpu", "x", "na")]) == "na"
    assert cell_state([rec("a-cpu-m-none", "x", "error", reason="preflight: cannot import a")]) == "skipped"


def test_a_go_on_the_cpu_says_so_and_never_reads_as_npu_sign_off():
    so = evaluate(default_run(), "complete", Policy.default(), (), TODAY)
    assert so.verdict == "GO" and so.title == "GO on cpu only"
    assert so.headline.endswith("ran 2 of 4 planned cells: cpu 2/2 · npu 0/2")
    full = evaluate([rec("hf-cpu-m-none", "accuracy", "pass")], "complete", Policy.default(), (), TODAY)
    assert full.title == "GO"


def test_a_policy_requiring_npu_makes_unrun_npu_cells_no_go_with_the_reason():
    policy = Policy("release", Policy.default().rules, require=CoverageRule(devices=("npu",), min_cells=3))
    so = evaluate(default_run(), "complete", policy, (), TODAY)
    assert so.verdict == "NO-GO" and so.title == "NO-GO"
    reasons = [f.reason for f in so.blockers if f.kind == "not-covered"]
    assert reasons[0].startswith("required device npu: 0 of 2 planned cells ran") and NO_NPU in reasons[0]
    assert reasons[1] == "2 cell(s) ran, the policy requires at least 3"


def test_a_required_value_absent_from_the_matrix_blocks_and_says_how_to_add_it():
    policy = Policy("release", Policy.default().rules, require=CoverageRule(runtimes=("sglang",)))
    (f,) = evaluate(default_run(), "complete", policy, (), TODAY).blockers
    assert f.kind == "not-covered" and "--runtimes sglang" in f.reason


def test_simulated_cells_do_not_satisfy_a_coverage_requirement():
    recs = [rec("hf-npu-m-none", "accuracy", "pass", simulated=True)]
    policy = Policy("release", Policy.default().rules, require=CoverageRule(devices=("npu",)))
    so = evaluate(recs, "complete", policy, (), TODAY)
    assert any(f.kind == "not-covered" and "1 ran only on simulated devices" in f.reason for f in so.blockers)


def test_allow_nothing_ran_is_an_explicit_policy_choice():
    skipped = [rec("hf-npu-m-none", "accuracy", "skipped", reason=NO_NPU)]
    assert evaluate(skipped, "complete", Policy.default(), (), TODAY).blockers[0].kind == "nothing-ran"
    lenient = Policy("lenient", Policy.default().rules, allow_nothing_ran=True)
    assert evaluate(skipped, "complete", lenient, (), TODAY).verdict == "GO"


def test_policy_file_reads_require_and_refuses_mistakes(tmp_path: Path):
    good = tmp_path / "p.yaml"
    good.write_text("schema: 1\nrequired: [{cells: '*', checks: '*'}]\n"
                    "require: {devices: [npu], models: [qwen3-30b-a3b], min_cells: 8}\nallow_nothing_ran: false\n")
    p = Policy.from_file(good)
    assert p.require == CoverageRule(devices=("npu",), models=("qwen3-30b-a3b",), min_cells=8) and not p.allow_nothing_ran
    for body, needle in (("require: {devices: [tpu]}", "unknown device(s) ['tpu']"),
                         ("require: {min_cells: -1}", "expected a whole number >= 0"),
                         ("require: {device: [npu]}", "unknown field 'device'"),
                         ("allow_nothing_ran: maybe", "expected true or false")):
        bad = tmp_path / "bad.yaml"
        bad.write_text("schema: 1\nrequired: [{cells: '*', checks: '*'}]\n" + body + "\n")
        with pytest.raises(SpecFileError, match=".*") as caught:
            Policy.from_file(bad)
        assert needle in str(caught.value)


def test_the_shipped_release_policy_requires_the_npu_cells():
    from harness.reports.policy import EXAMPLE

    policy = Policy.from_file(EXAMPLE)
    assert "npu" in policy.require.devices
    so = evaluate(default_run(), "complete", policy, (), TODAY)
    assert so.verdict == "NO-GO" and any(f.kind == "not-covered" for f in so.blockers)
