"""Rule accel-import: accelerator-only packages imported at import time without a guard."""

from __future__ import annotations

from tests.portability.support import Pick


def test_module_level_import_is_flagged_for_platforms_without_the_package(pick: Pick) -> None:
    (finding,) = pick("models/unguarded_import.py")
    assert (finding.rule, finding.line, finding.symbol) == ("accel-import", 3, "sgl_kernel.dsv3_router_gemm")
    assert finding.platforms == ("npu",)  # sgl_kernel ships for cuda, rocm, xpu and cpu
    assert finding.key == "accel-import:fakert/models/unguarded_import.py:sgl_kernel.dsv3_router_gemm"


def test_import_under_platform_guard_is_not_flagged(pick: Pick) -> None:
    assert pick("models/guarded_import.py") == []


def test_import_inside_function_runs_at_call_time_and_is_latent_unless_a_platform_is_sent_there(pick: Pick) -> None:
    (finding,) = pick("models/lazy_import.py")
    assert (finding.line, finding.when, finding.severity) == (2, "call", "latent")  # listed, does not fail
    assert finding.platforms == ("rocm", "npu", "xpu", "cpu")


def test_try_except_import_error_is_not_flagged(pick: Pick) -> None:
    assert pick("models/try_import.py") == []


def test_environment_switch_is_not_a_platform_guard(pick: Pick) -> None:
    (finding,) = pick("models/env_guarded_import.py")
    assert finding.symbol == "flashinfer.sampling"
    assert finding.platforms == ("rocm", "npu", "xpu", "cpu")


def test_class_body_runs_at_import_time(pick: Pick) -> None:
    (finding,) = pick("models/class_body_import.py", rule="accel-import")
    assert (finding.symbol, finding.line) == ("deep_ep", 2)


def test_platform_only_module_imported_under_its_guard_is_not_flagged(pick: Pick) -> None:
    # layers/rocm_only.py imports aiter at top level, but layers/partial.py imports it
    # only under `if _is_hip:`, so it is never imported where aiter is missing.
    assert pick("layers/rocm_only.py") == []
