"""Injected faults on the tiny MoE models (real hf processes): one expert's weight transposed on load,
the NPU bug class that still answered "Paris", is named by weight parity through transformers' and
SGLang's fused expert layouts and in disk offload, and caught by logprob parity; SGLang's fused
layouts (w13/w2, MLA's fused_qkv_a_proj_with_mqa, shared experts) with zero padding pass."""
from __future__ import annotations

import pytest

from tests.faultmargin import ScenarioMargins
from tests.test_faults_switch import Outcomes, Scenario, outcomes  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e
QWEN, GLM = "tiny-qwen2-moe", "tiny-glm4-moe-lite"
EXPERT = "model.layers.1.mlp.experts.1"

EXPECTED: dict[Scenario, tuple[tuple[str, str, str], str | None]] = {
    Scenario(QWEN, "moe_expert_transposed"): (("fail", "fail", "pass"), "model.layers.1.mlp.experts.gate_up_proj"),
    Scenario(QWEN, "moe_expert_transposed", offload="disk"): (("fail", "fail", "pass"), "model.layers.1.mlp.experts.gate_up_proj"),
    Scenario(QWEN, "sglang_layout,moe_expert_transposed", layout="sglang"): (
        ("fail", "fail", "pass"), "model.layers.1.mlp.experts.w13_weight"),
    Scenario(QWEN, "sglang_layout", layout="sglang"): (("pass", "pass", "pass"), None),
    Scenario(GLM, "sglang_layout", layout="sglang"): (("pass", "pass", "pass"), None),
}


@pytest.mark.parametrize("scenario", list(EXPECTED), ids=lambda s: s.id)
def test_each_check_sees_what_the_table_says(outcomes: Outcomes, scenario: Scenario):
    statuses, via = EXPECTED[scenario]
    got = outcomes(scenario).results
    observed = tuple(got[c].status for c in ("weight_parity", "logprob_parity", "accuracy"))
    assert observed == statuses, {c: r.reason for c, r in got.items()}
    if via is not None:
        wp = got["weight_parity"]
        failed = {w["name"]: w["note"] for w in wp.details["worst"] if not w["ok"]}
        assert set(failed) == {f"{EXPERT}.gate_proj.weight", f"{EXPERT}.up_proj.weight"}
        assert all(f"via {via}" in note for note in failed.values()) and wp.metrics["worst_tensor"] in failed
        assert "prompt '" in got["logprob_parity"].reason and "token" in got["logprob_parity"].reason


@pytest.mark.parametrize("scenario", list(EXPECTED), ids=lambda s: s.id)
def test_each_fault_clears_its_limit_by_2x_and_benign_ones_stay_under_half(outcomes: Outcomes, scenario: Scenario,
                                                                           record_property):
    margins = ScenarioMargins.of(scenario.id, outcomes(scenario).results, EXPECTED[scenario][0])
    record_property("fault_margin", margins.line())
    assert not margins.problems(), margins.problems()


def test_the_first_faulted_cell_boots_the_clean_reference_and_later_cells_reuse_it(outcomes: Outcomes):
    first = outcomes(Scenario(QWEN, "moe_expert_transposed")).results["logprob_parity"]
    later = outcomes(Scenario(QWEN, "moe_expert_transposed", offload="disk")).results["logprob_parity"]
    assert (first.metrics["reference_source"], later.metrics["reference_source"]) == ("computed", "cache")


def test_mla_and_shared_experts_are_read_through_their_fused_names(outcomes: Outcomes):
    # the view hides q_a_proj, kv_a_proj_with_mqa, gate/up_proj and the experts' tensors: only the
    # fused names answer, so comparing all 41 tensors means every fused rule found its block
    wp = outcomes(Scenario(GLM, "sglang_layout", layout="sglang")).results["weight_parity"]
    assert wp.metrics["tensors_unavailable"] == 0 and wp.metrics["tensors_compared"] == 41
