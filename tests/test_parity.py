from __future__ import annotations

import numpy as np

from harness.checks.parity import compare, worst_first
from harness.config.cards import DEFAULT_TOLERANCES, Tolerance

TOL = Tolerance(atol=1e-6, rtol=1e-5)


def test_identical_tensors_pass_with_zero_error():
    a = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    r = compare("w", a.copy(), a, TOL)
    assert r.ok and r.max_abs == 0.0 and r.max_rel == 0.0 and r.frac_outside == 0.0
    assert abs(r.cosine - 1.0) < 1e-12


def test_scaled_by_1_001_is_caught():
    a = np.linspace(0.1, 1, 100, dtype=np.float32)
    r = compare("w", a * np.float32(1.001), a, TOL)
    assert not r.ok
    assert 9e-4 < r.max_rel < 1.1e-3
    assert r.frac_outside == 1.0


def test_bf16_rounding_passes_bf16_tolerance_but_not_fp32():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(1000).astype(np.float32)
    bf16 = ((a.view(np.uint32) + 0x8000) & 0xFFFF0000).view(np.float32)  # round to bf16
    assert compare("w", bf16, a, Tolerance(atol=1e-5, rtol=4e-3)).ok
    assert not compare("w", bf16, a, TOL).ok


def test_tol_ratio_says_how_far_past_tolerance_the_worst_element_is():
    a = np.linspace(0.1, 1, 100, dtype=np.float32)
    scaled = compare("w", a * np.float32(1.001), a, TOL)
    assert 85 < scaled.tol_ratio < 95  # 1e-3 * 1 / (1e-6 + 1e-5 * 1) = 90.9 at the largest element
    assert compare("w", a.copy(), a, TOL).tol_ratio == 0.0
    assert compare("w", a + np.float32(1e-7), a, TOL).tol_ratio < 1  # inside tolerance: ok, ratio under 1
    assert compare("w", np.ones(2), np.ones(3), TOL).tol_ratio == float("inf")
    assert compare("w", np.ones(2), np.zeros(2), Tolerance(0, 0)).tol_ratio == float("inf")


def test_bf16_rounding_uses_under_half_of_the_bf16_tolerance():
    a = np.random.default_rng(0).standard_normal(100_000).astype(np.float32)
    bf16 = ((a.view(np.uint32) + 0x8000) & 0xFFFF0000).view(np.float32)
    r = compare("w", bf16, a, DEFAULT_TOLERANCES["bfloat16"])
    assert r.max_rel <= 2 ** -8 and 0.4 < r.tol_ratio <= 0.5  # rounding's bound is 2^-8 relative, rtol is 2x that


def test_shape_mismatch_is_a_failure_that_says_so():
    r = compare("w", np.zeros((4, 3)), np.zeros((3, 4)), TOL)
    assert not r.ok and "shape (4, 3) != checkpoint (3, 4)" in r.note


def test_nan_fails_and_is_named():
    a = np.ones(4, dtype=np.float32)
    b = a.copy()
    b[1] = np.nan
    r = compare("w", b, a, TOL)
    assert not r.ok and r.note == "non-finite values"


def test_worst_first_orders_failures_by_damage():
    a = np.ones(10, dtype=np.float32)
    ok = compare("ok", a, a, TOL)
    small = compare("small", a + np.float32(1e-3), a, TOL)
    big = compare("big", a + np.float32(1.0), a, TOL)
    assert [r.name for r in worst_first([ok, small, big])] == ["big", "small", "ok"]
