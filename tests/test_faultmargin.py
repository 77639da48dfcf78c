"""The margin maths behind the fault tests' '>= 2x' assertions (tests/faultmargin.py), on made-up results."""
from __future__ import annotations

import math

import pytest

from harness.checks import CheckResult
from tests.faultmargin import Margin, ScenarioMargins, margins

LOGPROB_LIMITS = {"limit_max_abs_delta": 1e-4, "limit_max_topk_delta": 1e-3, "limit_min_token_agreement": 1.0,
                  "limit_min_topk_overlap": 0.8}


def logprob(delta: float, topk: float = 0.0, agreement: float = 1.0, overlap: float = 1.0) -> CheckResult:
    status = "fail" if delta > 1e-4 or topk > 1e-3 or agreement < 1 or overlap < 0.8 else "pass"
    return CheckResult(status, metrics={"max_abs_delta": delta, "max_topk_delta": topk, "token_agreement": agreement,
                                        "min_topk_overlap": overlap, **LOGPROB_LIMITS})


def weights(tol_ratio: float, padding: float = 0.0) -> CheckResult:
    return CheckResult("fail" if tol_ratio > 1 or padding else "pass", metrics={"max_tol_ratio": tol_ratio},
                       details={"worst": [{"name": "lm_head.weight", "padding_max_abs": padding}]})


def accuracy(rate: float) -> CheckResult:
    return CheckResult("pass" if rate >= 0.9 else "fail", metrics={"pass_rate": rate, "threshold": 0.9})


def test_each_limit_becomes_a_ratio_that_trips_above_one():
    got = {g.limit: g.ratio for g in margins("logprob_parity", logprob(3e-4, topk=5e-4, agreement=0.5, overlap=0.6))}
    assert got["max_abs_delta"] == pytest.approx(3) and got["max_topk_delta"] == pytest.approx(0.5)
    assert got["token_agreement"] == math.inf  # float32 allows no disagreement: any is infinitely past
    assert got["topk_overlap"] == pytest.approx(2)  # 40 % missing against 20 % allowed
    assert [g.ratio for g in margins("weight_parity", weights(0.3, padding=0.01))] == [0.3, math.inf]
    assert margins("accuracy", accuracy(0.7))[0].ratio == pytest.approx(3)


def test_accuracy_is_judged_by_its_worst_set():
    result = CheckResult("fail", metrics={"world.pass_rate": 1.0, "world.threshold": 0.9,
                                          "arithmetic.pass_rate": 0.5, "arithmetic.threshold": 0.75})
    assert margins("accuracy", result)[0].ratio == pytest.approx(2)


def test_a_fault_on_its_limit_is_a_problem_that_names_the_value_and_the_fix():
    results = {"weight_parity": weights(66.0), "logprob_parity": logprob(9.65e-5, topk=9.4e-3),
               "accuracy": accuracy(1)}
    m = ScenarioMargins.of("hf-cpu-tiny-llama-none[attn_scaled]", results, ("fail", "fail", "pass"))
    [problem] = m.problems()
    assert "logprob_parity should catch it by max_abs_delta 0.965x (9.65e-05 vs 0.0001)" in problem
    assert "strengthen the fault" in problem
    top_k = ScenarioMargins.of("x", results, ("fail", "fail", "pass"), {"logprob_parity": "max_topk_delta"})
    assert not top_k.problems()  # the same fault probed by the limit it clears (9.4x) has no problem


def test_a_benign_scenario_must_stay_under_half_of_every_limit():
    near = {"weight_parity": weights(0.95), "logprob_parity": logprob(1e-5), "accuracy": accuracy(1)}
    [problem] = ScenarioMargins.of("bf16", near, ("pass", "pass", "pass")).problems()
    assert "weight_parity should pass with room but tolerance 0.95x" in problem
    clear = {**near, "weight_parity": weights(0.48)}
    assert not ScenarioMargins.of("bf16", clear, ("pass", "pass", "pass")).problems()


def test_the_line_marks_the_probed_limit_of_a_caught_check():
    results = {"weight_parity": weights(0.0, padding=0.01), "logprob_parity": logprob(0.0), "accuracy": accuracy(1)}
    line = ScenarioMargins.of("pad", results, ("fail", "pass", "pass"), {"weight_parity": "padding"}).line()
    assert line.startswith("pad  weight_parity caught: tolerance 0x, padding* inf x | logprob_parity passes:")
    assert Margin("accuracy", "threshold", 0.0, 0.0).ratio == 0.0
