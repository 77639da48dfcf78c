"""Sign-off semantics: what is required, what counts as missing, what waivers do."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from harness.reports.policy import Policy, RequiredRule
from harness.reports.signoff import evaluate
from harness.reports.waivers import Waiver
from tests.reportruns import TODAY, rec

NPU = Policy("npu", (RequiredRule(("*-npu-*",), ("accuracy", "weight_parity")),))


def waiver(cells="*-npu-*", check="*", expires=dt.date(2026, 12, 31)) -> Waiver:
    return Waiver((cells,), check, "known", "ORG-1", expires, 3, "/w/waivers.yaml")


def judge(records, policy=NPU, waivers=(), status="complete"):
    return evaluate(records, status, policy, waivers, TODAY)


def kinds(so):
    return {(f.cell, f.check): f.kind for f in so.blockers}


def test_default_policy_all_pass_is_go_and_ignores_skipped_and_na():
    so = judge([rec("hf-cpu-m-none", "accuracy", "pass"), rec("hf-cpu-m-cpu", "accuracy", "na"),
                rec("hf-npu-m-none", "accuracy", "skipped", reason="no npu found")], Policy.default())
    assert so.verdict == "GO" and (so.satisfied, so.required, so.not_applicable) == (1, 1, 1)


def test_default_policy_any_failure_is_no_go():
    so = judge([rec("hf-cpu-m-none", "accuracy", "pass"), rec("hf-cpu-m-disk", "weight_parity", "error", reason="boot-crash: x")],
               Policy.default())
    assert so.verdict == "NO-GO" and kinds(so) == {("hf-cpu-m-disk", "weight_parity"): "error"}


def test_nothing_ran_is_no_go():
    so = judge([rec("hf-npu-m-none", "accuracy", "skipped")], Policy.default())
    assert so.verdict == "NO-GO" and so.blockers[0].kind == "nothing-ran"


def test_simulated_results_never_count():
    so = judge([rec("hf-npu-m-none", "accuracy", "pass", simulated=True), rec("hf-npu-m-none", "weight_parity", "pass")])
    assert so.verdict == "NO-GO"
    (f,) = so.blockers
    assert (f.cell, f.check, f.kind) == ("hf-npu-m-none", "accuracy", "missing") and "simulated" in f.reason


def test_a_required_cell_that_was_skipped_is_missing_unless_waived_or_allowed():
    recs = [rec("hf-npu-m-none", "accuracy", "skipped", reason="no npu device found"), rec("hf-npu-m-none", "weight_parity", "pass")]
    so = judge(recs)
    assert kinds(so) == {("hf-npu-m-none", "accuracy"): "missing"} and "no npu device found" in so.blockers[0].reason
    assert judge(recs, waivers=[waiver(check="accuracy")]).verdict == "GO"
    allowing = Policy("p", (RequiredRule(("*-npu-*",), ("accuracy", "weight_parity"), allow_skipped=True),))
    assert judge(recs, allowing).verdict == "GO"


def test_na_is_not_required():
    so = judge([rec("hf-npu-m-cpu", "accuracy", "na"), rec("hf-npu-m-cpu", "weight_parity", "na"),
                rec("hf-npu-m-none", "accuracy", "pass"), rec("hf-npu-m-none", "weight_parity", "pass")])
    assert so.verdict == "GO" and so.not_applicable == 2


def test_a_required_check_with_no_result_is_missing():
    so = judge([rec("hf-npu-m-none", "accuracy", "pass")])
    assert kinds(so) == {("hf-npu-m-none", "weight_parity"): "missing"}


def test_a_pattern_matching_no_cell_and_an_absent_named_cell_are_missing():
    policy = Policy("p", (RequiredRule(("*-npu-*", "hf-cpu-m-none"), ("*",)),))
    so = judge([rec("hf-cuda-m-none", "accuracy", "pass")], policy)
    assert kinds(so) == {("*-npu-*", "*"): "missing", ("hf-cpu-m-none", "*"): "missing"}


def test_star_checks_mean_every_check_the_cell_recorded():
    policy = Policy("p", (RequiredRule(("hf-cpu-*",), ("*",)),))
    so = judge([rec("hf-cpu-m-none", "accuracy", "pass"), rec("hf-cpu-m-none", "weight_parity", "fail")], policy)
    assert kinds(so) == {("hf-cpu-m-none", "weight_parity"): "fail"} and so.satisfied == 1


def test_cells_outside_the_policy_do_not_matter():
    so = judge([rec("hf-npu-m-none", "accuracy", "pass"), rec("hf-npu-m-none", "weight_parity", "pass"),
                rec("hf-cpu-m-none", "accuracy", "fail")])
    assert so.verdict == "GO"


def test_interrupted_run_is_no_go_unless_the_policy_allows_it():
    recs = [rec("hf-npu-m-none", "accuracy", "pass"), rec("hf-npu-m-none", "weight_parity", "pass")]
    assert judge(recs, status="interrupted").blockers[0].kind == "incomplete"
    lenient = Policy("p", NPU.rules, require_complete=False)
    assert judge(recs, lenient, status="interrupted").verdict == "GO"


def test_expired_waiver_blocks_and_says_so_and_a_valid_one_wins():
    recs = [rec("hf-npu-m-none", "accuracy", "fail"), rec("hf-npu-m-none", "weight_parity", "pass")]
    old = waiver(expires=dt.date(2026, 11, 1))
    so = judge(recs, waivers=[old])
    assert so.verdict == "NO-GO" and so.blockers[0].waiver_expired and so.blockers[0].waiver is old
    assert so.stale == ()  # it matched something: expired, not stale
    assert judge(recs, waivers=[old, waiver()]).verdict == "GO"


def test_stale_waivers_are_reported_with_why():
    recs = [rec("hf-npu-m-none", "accuracy", "pass"), rec("hf-npu-m-none", "weight_parity", "pass")]
    so = judge(recs, waivers=[waiver(cells="*-cuda-*"), waiver(check="accuracy")])
    assert so.verdict == "GO"
    gone, fixed = so.stale
    assert "matches no result" in gone.why and "problem looks fixed" in fixed.why
    assert fixed.waiver.label == "waivers.yaml:3 (*-npu-* / accuracy)"


def test_the_example_files_load():
    root = Path(__file__).resolve().parent.parent / "reports" / "examples"
    from harness.reports.waivers import load_waivers

    assert Policy.from_file(root / "policy.yaml").rules[0].cells == ("*-npu-*",)
    assert len(load_waivers(root / "waivers.yaml")) == 2
