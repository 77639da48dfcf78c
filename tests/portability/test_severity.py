"""Severity by reachability on the synthetic ``reachrt`` runtime: breaks, option, latent, and the chain."""

from __future__ import annotations

import pytest
import yaml

from harness.portability.analyzer import Analysis, analyse_tree
from harness.portability.finding import Finding
from harness.portability.profile import PROFILES
from tests.portability.support import REACH, REACH_PROFILE_YAML


@pytest.fixture(scope="module")
def reach() -> Analysis:
    profile = PROFILES.get("sglang").with_overrides(yaml.safe_load(REACH_PROFILE_YAML.read_text()),
                                                     source=str(REACH_PROFILE_YAML))
    return analyse_tree(REACH, profile.packages, profile, jobs=1)


def found(analysis: Analysis, path: str, line: int | None = None) -> list[Finding]:
    return [f for f in analysis.findings if f.path == f"reachrt/{path}" and line in (None, f.line)]


def test_a_chain_of_module_level_imports_from_a_model_breaks_and_is_spelled_out(reach: Analysis) -> None:
    (finding,) = found(reach, "kernels/cute_ops.py")  # outside the listed packages: followed from the model
    assert (finding.rule, finding.symbol, finding.severity) == ("accel-import", "cutlass", "breaks")
    assert finding.platforms == ("npu", "xpu", "cpu")  # `if not _is_hip:` admits them, not only CUDA
    assert finding.reach == (
        "imported at start on {npu, xpu, cpu}: reachrt.models.llama (model registry) -> reachrt.layers.attn "
        "(line 2) -> reachrt.kernels.cute_ops (line 7, guard admits {cuda, npu, xpu, cpu})")


def test_imports_below_one_that_raises_and_caught_imports_do_not_break(reach: Analysis) -> None:
    (shadowed,) = found(reach, "kernels/deep.py")
    (caught,) = found(reach, "kernels/caught.py")
    assert (shadowed.severity, caught.severity) == ("latent", "latent")


def test_a_module_nothing_imports_is_latent(reach: Analysis) -> None:
    (finding,) = found(reach, "layers/orphan.py")
    assert (finding.severity, finding.reach) == ("latent", "no module of the runtime imports it")


def test_the_platforms_own_dispatch_and_checks_break_other_call_sites_do_not(reach: Analysis) -> None:
    by_line = {f.line: f for f in found(reach, "layers/norm.py")}
    assert set(by_line) == {12, 19, 24, 38, 58}  # not 33: CudaOnly.__init__ raises off CUDA, so run() never runs there
    assert (by_line[12].severity, by_line[12].platforms) == ("breaks", ("npu",))  # forward_npu
    assert "sent to Norm.forward_npu" in by_line[12].reach
    assert (by_line[19].severity, by_line[19].platforms) == ("breaks", ("npu",))  # elif _is_npu:
    assert by_line[24].severity == "latent" and by_line[24].platforms == ("rocm", "npu", "xpu", "cpu")


def test_a_call_site_under_a_user_choice_names_the_option(reach: Analysis) -> None:
    (finding,) = found(reach, "quant/gguf.py")
    assert (finding.severity, finding.option, finding.when) == ("option", "a quantization method (gguf)", "call")
    assert finding.platforms == ("rocm", "xpu", "cpu")  # NPU runs GGUFLinearAscendMethod.apply instead


def test_importing_a_name_bound_only_on_some_platforms_breaks_a_model(reach: Analysis) -> None:
    (finding,) = found(reach, "models/mamba.py")
    assert (finding.symbol, finding.when, finding.severity) == ("conv_fn", "import", "breaks")
    assert finding.platforms == ("rocm", "xpu", "cpu")


def test_a_predicate_function_imported_from_another_module_guards_an_import(reach: Analysis) -> None:
    assert found(reach, "layers/fast.py") == []  # aiter_can_use_fast() is False unless is_hip()


def test_a_file_with_a_byte_order_mark_is_read(reach: Analysis) -> None:
    (finding,) = found(reach, "models/bom_model.py")
    assert (finding.line, finding.symbol, finding.severity) == (2, "flashinfer.sampling", "breaks")
    assert not reach.errors


def test_a_name_bound_under_a_platform_and_a_switch_is_unbound_on_that_platform_without_the_switch(reach: Analysis) -> None:
    (finding,) = found(reach, "layers/aiter_norm.py")  # not line 20: the else branch binds other_norm
    assert (finding.line, finding.symbol, finding.platforms, finding.severity) == (21, "fused_norm", ("rocm",), "breaks")
    assert "is bound only on {rocm} when a test that is not about the platform also holds" in finding.hint


def test_an_import_inside_a_function_breaks_where_the_platforms_branch_runs_it(reach: Analysis) -> None:
    (finding,) = list(found(reach, "layers/norm.py", 38))
    assert (finding.rule, finding.when, finding.severity, finding.platforms) == ("accel-import", "call", "breaks", ("npu",))


def test_an_availability_flag_tested_before_use_vouches_for_its_name_also_through_a_method_call(reach: Analysis) -> None:
    assert [f.line for f in found(reach, "layers/flagged.py")] == [32]  # not 22 (via forward_cuda) nor 28


def test_a_class_attribute_that_is_a_platform_test_guards_its_readers_even_under_strict() -> None:
    profile = PROFILES.get("sglang").with_overrides(yaml.safe_load(REACH_PROFILE_YAML.read_text()),
                                                     source=str(REACH_PROFILE_YAML))
    strict = analyse_tree(REACH, ("reachrt.layers.norm",), profile, jobs=1, strict=True)
    lines = {f.line for f in strict.findings if f.path == "reachrt/layers/norm.py"}
    assert 24 in lines and 49 not in lines  # `if self.supports_fused:` is `if _is_cuda:`


def test_a_method_chosen_by_a_dispatch_table_needs_that_key(reach: Analysis) -> None:
    (finding,) = found(reach, "layers/norm.py", 58)
    assert (finding.severity, finding.option) == ("option", "the dispatch-table entry 'fused'")


def test_a_helper_whose_every_call_in_any_module_is_under_a_platform_check_runs_only_there(reach: Analysis) -> None:
    assert found(reach, "layers/helpers.py") == []


def test_a_module_only_a_function_imports_is_reached_when_that_function_runs(reach: Analysis) -> None:
    (finding,) = found(reach, "layers/lazy_rope.py")
    assert (finding.symbol, finding.severity, finding.option) == ("tilelang", "option", "a lazy_model model")
    assert finding.platforms == ("npu", "xpu", "cpu")
