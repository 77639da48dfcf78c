"""Platform conditions: negation, and/or, else branches, aliases, implied predicates."""

from __future__ import annotations

import ast

import pytest

from harness.portability.platforms import ALL, Condition
from harness.portability.predicates import ConditionEvaluator, NameClassifier, split_name
from harness.portability.profile import PROFILES

SGLANG = PROFILES.get("sglang")


def evaluate(test: str, module: str = "") -> Condition:
    evaluator = ConditionEvaluator(NameClassifier(SGLANG), SGLANG)
    evaluator.learn_module_aliases(ast.parse(module).body)
    return evaluator.evaluate(ast.parse(test, mode="eval").body)


@pytest.mark.parametrize(
    ("test", "true_on", "false_on"),
    [
        ("_is_cuda", {"cuda"}, ALL - {"cuda"}),
        ("is_npu()", {"npu"}, ALL - {"npu"}),
        ("not _is_npu", ALL - {"npu"}, {"npu"}),
        ("_is_cuda or _is_hip", {"cuda", "rocm"}, {"npu", "xpu", "cpu"}),
        ("_is_cuda and envs.FAST.get()", {"cuda"}, ALL),
        ("current_platform.is_rocm()", {"rocm"}, ALL - {"rocm"}),
        ("torch.version.hip is not None", {"rocm"}, ALL - {"rocm"}),
        ("_use_aiter", {"rocm"}, ALL),
        ("_is_gfx95_supported", {"rocm"}, ALL),
        ("is_flashinfer_available()", {"cuda"}, ALL),
        ("has_deep_ep()", {"cuda"}, ALL),
        ("rocm_aiter_ops.is_enabled()", {"rocm"}, ALL),
        ("torch.cuda.is_available()", {"cuda", "rocm"}, {"npu", "xpu", "cpu"}),
        ("TYPE_CHECKING", set(), ALL),
        ("config.use_bias", ALL, ALL),
    ],
)
def test_condition(test: str, true_on: set[str], false_on: set[str]) -> None:
    cond = evaluate(test)
    assert (cond.may_true, cond.may_false) == (frozenset(true_on), frozenset(false_on))


def test_module_alias_is_learnt_from_its_assignment() -> None:
    cond = evaluate("_fast", "_fast = is_hip() and get_bool_env_var('X')\n")
    assert cond.may_true == {"rocm"}


def test_alias_assigned_on_several_paths_joins_them() -> None:
    module = "_has_fused = False\nif _is_hip:\n    _has_fused = True\n"
    assert evaluate("_has_fused").may_true == ALL  # without the module it is just a name
    assert evaluate("_has_fused", module).may_true == {"rocm"}


def test_name_the_module_assigns_from_non_platform_values_is_not_a_predicate() -> None:
    module = "try:\n    import deep_ep\n    has_deep_ep = True\nexcept ImportError:\n    has_deep_ep = False\n"
    assert evaluate("has_deep_ep").may_true == {"cuda"}  # by its name: deep_ep is CUDA-only
    assert not evaluate("has_deep_ep", module).is_platform


@pytest.mark.parametrize(
    ("name", "words"),
    [("_use_aiter_gfx95", ["use", "aiter", "gfx95"]), ("FlashInferAttnBackend", ["flash", "infer", "attn", "backend"])],
)
def test_split_name(name: str, words: list[str]) -> None:
    assert split_name(name) == words


def test_graph_names_are_not_platform_predicates() -> None:
    assert NameClassifier(SGLANG).predicate("is_in_breakable_cuda_graph") is None
