"""Regression diff: each change class, cells appearing and disappearing, metric drift within tolerances."""
from __future__ import annotations

import math

import pytest

from harness.reports.diff import diff_runs
from harness.reports.drift import Tolerance
from tests.reportruns import rec

A, B, C = "hf-npu-m-none", "hf-npu-m-disk", "hf-npu-m-cpu"


def diff(before, now, **kw):
    return diff_runs(now, before, baseline_id="base", baseline_path="/h/base", chosen_because="given", **kw)


def test_every_change_class():
    before = [rec(A, "accuracy", "pass"), rec(A, "weight_parity", "fail"), rec(B, "accuracy", "error"),
              rec(B, "weight_parity", "pass"), rec(C, "accuracy", "fail")]
    now = [rec(A, "accuracy", "fail"), rec(A, "weight_parity", "pass"), rec(B, "accuracy", "error"),
           rec(B, "weight_parity", "skipped"), rec(C, "accuracy", "na"), rec(B, "logprob_parity", "fail")]
    d = diff(before, now)
    kinds = {(c.cell, c.check): c.kind for c in d.changes}
    assert kinds == {(A, "accuracy"): "new-failure", (A, "weight_parity"): "fixed", (B, "accuracy"): "still-failing",
                     (B, "weight_parity"): "coverage-lost", (C, "accuracy"): "coverage-lost",
                     (B, "logprob_parity"): "new-failure"}
    new_check = next(c for c in d.changes if c.check == "logprob_parity")
    assert new_check.before is None  # a check that did not exist last night and fails now is new
    assert d.counts == {"new-failure": 2, "fixed": 1, "still-failing": 1, "coverage-lost": 2}


def test_cells_appeared_and_disappeared():
    d = diff([rec(A, "accuracy", "pass"), rec(B, "accuracy", "pass")], [rec(A, "accuracy", "pass"), rec(C, "accuracy", "fail")])
    assert d.appeared == (C,) and d.disappeared == (B,)
    assert [(c.kind, c.cell, c.before) for c in d.changes] == [("new-failure", C, None)]


def acc(rate: float, **kw):
    return rec(A, "accuracy", "pass", metrics={"pass_rate": rate, "correct": 0, "total": 10}, **kw)


def test_accuracy_drop_beyond_tolerance_is_worse_drift_and_within_is_not():
    assert diff([acc(1.0)], [acc(0.99)]).drift == ()
    (d,) = diff([acc(1.0)], [acc(0.9)]).drift
    assert (d.metric, d.before, d.after, d.worse) == ("accuracy.pass_rate", 1.0, 0.9, True)
    (d,) = diff([acc(0.8)], [acc(0.9)]).drift
    assert not d.worse


def test_pass_rate_is_derived_from_correct_and_total_when_absent():
    old = rec(A, "accuracy", "pass", metrics={"correct": 10, "total": 10})
    new = rec(A, "accuracy", "pass", metrics={"correct": 8, "total": 10})
    assert [x.metric for x in diff([old], [new]).drift] == ["accuracy.pass_rate"]


@pytest.mark.parametrize("check, key, before, after, worse", [
    ("weight_parity", "max_abs", 0.0, 1e-3, True),
    ("weight_parity", "max_abs", 1e-3, 0.0, False),
    ("logprob_parity", "max_abs_delta", 0.01, 0.05, True),
    ("weight_parity", "max_abs", 0.0, "inf", True),
    ("weight_parity", "max_abs", 0.0, "nan", True),
    ("throughput", "tokens_per_s", 100.0, 80.0, True),
    ("throughput", "peak_memory_bytes", 1e9, 1.5e9, True),
])
def test_metric_drift(check, key, before, after, worse):
    (d,) = diff([rec(A, check, "pass", metrics={key: before})], [rec(A, check, "pass", metrics={key: after})]).drift
    assert d.key == key and d.worse is worse


def test_within_tolerance_metrics_and_absent_ones_do_not_drift():
    small = diff([rec(A, "weight_parity", "pass", metrics={"max_abs": 0.0})],
                 [rec(A, "weight_parity", "pass", metrics={"max_abs": 1e-7})])
    assert small.drift == ()
    absent = diff([rec(A, "logprob_parity", "pass", metrics={})], [rec(A, "logprob_parity", "pass", metrics={"max_abs_delta": 1.0})])
    assert absent.drift == ()


def test_boot_time_is_timing_noise_not_drift_by_default():
    # the unchanged rerun: a cold first boot, a warm second one
    cold = [rec(A, "accuracy", "pass", boot_s=11.2), rec(A, "weight_parity", "pass", boot_s=11.2)]
    warm = [rec(A, "accuracy", "pass", boot_s=4.4), rec(A, "weight_parity", "pass", boot_s=4.4)]
    assert diff(cold, warm).drift == () and diff(warm, cold).drift == ()
    assert diff(cold, [rec(A, "accuracy", "pass", boot_s=300.0)]).drift == ()


def test_boot_time_is_compared_once_per_cell_when_a_policy_sets_its_tolerance():
    before = [rec(A, "accuracy", "pass", boot_s=10.0), rec(A, "weight_parity", "pass", boot_s=10.0)]
    now = [rec(A, "accuracy", "pass", boot_s=30.0), rec(A, "weight_parity", "pass", boot_s=30.0)]
    (d,) = diff(before, now, overrides={"boot_s": Tolerance(abs=5.0, rel=0.5)}).drift
    assert (d.metric, d.check, d.worse) == ("boot_s", "(boot)", True)
    assert diff(before, now, overrides={"boot_s": Tolerance(abs=60.0)}).drift == ()


def test_nan_to_nan_is_not_drift():
    d = diff([rec(A, "weight_parity", "pass", metrics={"max_abs": "nan"})],
             [rec(A, "weight_parity", "pass", metrics={"max_abs": math.nan})])
    assert d.drift == ()
