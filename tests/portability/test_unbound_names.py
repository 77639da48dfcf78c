"""Rule platform-unbound-name: names bound in some platform branches, read where they are unbound."""

from __future__ import annotations

from tests.portability.support import Pick


def test_branch_bound_name_used_unconditionally_is_flagged(pick: Pick) -> None:
    found = {(f.symbol, f.line): f for f in pick("models/branch_names.py")}
    forward = found[("fused_add", 13)]
    assert forward.rule == "platform-unbound-name"
    assert forward.platforms == ("rocm", "npu", "xpu", "cpu")
    assert forward.when == "call"


def test_import_time_read_is_flagged_at_import_time(pick: Pick) -> None:
    found = {(f.symbol, f.line): f for f in pick("models/branch_names.py")}
    default = found[("npu_add", 26)]
    assert default.platforms == ("cuda", "rocm", "xpu", "cpu")
    assert default.when == "import"


def test_reads_under_the_same_check_or_after_an_early_return_are_not_flagged(pick: Pick) -> None:
    lines = {f.line for f in pick("models/branch_names.py")}
    # not forward_guarded (19), forward_ternary (23) nor forward_local_flag (33), whose
    # `use_fused = _is_cuda and ...` local flag is followed like a platform check
    assert lines == {13, 26, 39}


def test_an_early_return_on_a_non_platform_test_leaves_the_main_path_checked(pick: Pick) -> None:
    (finding,) = [f for f in pick("models/branch_names.py") if f.line == 39]
    assert (finding.symbol, finding.platforms) == ("fused_add", ("rocm", "npu", "xpu", "cpu"))


def test_name_bound_in_every_branch_including_else_is_not_flagged(pick: Pick) -> None:
    assert pick("models/branch_names_else.py") == []


def test_importing_a_platform_bound_name_from_an_analysed_module_is_flagged(pick: Pick) -> None:
    (finding,) = pick("models/imports_partial_name.py")
    assert (finding.symbol, finding.line, finding.when) == ("cuda_only_fn", 1, "import")
    assert finding.platforms == ("rocm", "npu", "xpu", "cpu")
    assert "fakert.layers.partial" in finding.hint


def test_dispatch_methods_and_platform_named_helpers_are_not_flagged(pick: Pick) -> None:
    assert pick("models/dispatch.py") == []


def test_platform_words_in_module_names_narrow_where_functions_run(pick: Pick) -> None:
    assert pick("models/ascend_helpers.py") == []
