"""Injected faults on tiny-llama, each in its own real hf process: every fault is caught by the checks
that should catch it, at the right tensor (weight parity) or prompt and token (logprob parity), and no
benign difference (offload mode, bf16 cell, SGLang's fused layout with zero padding) is flagged.
The EXPECTED table is the one in docs/numerics.md."""
from __future__ import annotations

import re

import pytest

from tests.faultmargin import ScenarioMargins
from tests.test_faults_switch import Outcomes, Scenario, outcomes  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e
M = "tiny-llama"
REFERENCE = Scenario(M)
LOGPROB_NAMES_IT = re.compile(r"at prompt '[^']+' step \d+ token \d+ '[^']+'|prompt '[^']+' step \d+: reference token")

# scenario -> (weight_parity, logprob_parity, accuracy) statuses, and the tensor weight parity must name.
EXPECTED: dict[Scenario, tuple[tuple[str, str, str], str | None]] = {
    REFERENCE: (("pass", "pass", "pass"), None),
    Scenario(M, offload="disk"): (("pass", "pass", "pass"), None),
    Scenario(M, dtype="bfloat16"): (("pass", "pass", "pass"), None),
    Scenario(M, "sglang_layout", layout="sglang"): (("pass", "pass", "pass"), None),
    Scenario(M, "vocab_padding_garbage", layout="sglang"): (("fail", "pass", "pass"), "lm_head.weight"),
    Scenario(M, "attn_scaled"): (("fail", "fail", "pass"), "model.layers.1.self_attn.o_proj.weight"),
    Scenario(M, "norm_reset"): (("fail", "fail", "pass"), "model.layers.1.post_attention_layernorm.weight"),
    Scenario(M, "norm_reset", offload="disk"): (("fail", "fail", "pass"), "model.layers.1.post_attention_layernorm.weight"),
    Scenario(M, "tp_shard_zeroed"): (("fail", "fail", "fail"), "model.layers.0.self_attn.q_proj.weight"),
    Scenario(M, "bf16_rounded"): (("fail", "fail", "pass"), None),
}
# the limit a caught fault must clear by 2x, where not the default (weight tolerance, chosen-token
# |Δ logprob|, accuracy threshold): see tests/faultmargin.py
PROBES: dict[Scenario, dict[str, str]] = {
    Scenario(M, "vocab_padding_garbage", layout="sglang"): {"weight_parity": "padding"},
    Scenario(M, "tp_shard_zeroed"): {"logprob_parity": "token_agreement"},
}


@pytest.mark.parametrize("scenario", list(EXPECTED), ids=lambda s: s.id)
def test_each_check_sees_what_the_table_says(outcomes: Outcomes, scenario: Scenario):
    statuses, tensor = EXPECTED[scenario]
    got = outcomes(scenario).results
    observed = tuple(got[c].status for c in ("weight_parity", "logprob_parity", "accuracy"))
    assert observed == statuses, {c: r.reason for c, r in got.items()}
    if tensor is not None:
        assert got["weight_parity"].metrics["worst_tensor"] == tensor
        assert tensor in got["weight_parity"].reason
    if statuses[1] == "fail":
        assert LOGPROB_NAMES_IT.search(got["logprob_parity"].reason), got["logprob_parity"].reason


@pytest.mark.parametrize("scenario", list(EXPECTED), ids=lambda s: s.id)
def test_each_fault_clears_its_limit_by_2x_and_benign_ones_stay_under_half(outcomes: Outcomes, scenario: Scenario,
                                                                           record_property):
    margins = ScenarioMargins.of(scenario.id, outcomes(scenario).results, EXPECTED[scenario][0], PROBES.get(scenario))
    record_property("fault_margin", margins.line())
    assert not margins.problems(), margins.problems()


def test_the_reference_is_computed_once_and_offload_modes_agree_at_float32(outcomes: Outcomes):
    ref = outcomes(REFERENCE).results["logprob_parity"]
    disk = outcomes(Scenario(M, offload="disk")).results["logprob_parity"]
    assert ref.metrics["reference_source"] == "self" and disk.metrics["reference_source"] == "cache"
    assert disk.metrics["dtype"] == "float32" and disk.metrics["max_abs_delta"] <= disk.metrics["limit_max_abs_delta"]
    assert disk.metrics["token_agreement"] == 1.0
    faulted = outcomes(Scenario(M, "attn_scaled")).results["logprob_parity"]
    assert faulted.metrics["reference_source"] == "cache" and faulted.metrics["runtime_fault"] == "attn_scaled"


def test_a_faulted_runtime_shows_its_fault_in_the_fingerprint(outcomes: Outcomes):
    assert "hf_fault" not in outcomes(REFERENCE).fingerprint["versions"]
    assert outcomes(Scenario(M, "attn_scaled")).fingerprint["versions"]["hf_fault"] == "attn_scaled"


def test_bf16_rounding_fails_every_tensor_at_float32_and_none_in_a_bf16_cell(outcomes: Outcomes):
    rounded = outcomes(Scenario(M, "bf16_rounded")).results["weight_parity"].metrics
    assert rounded["tensors_failed"] == rounded["tensors_compared"] > 0
    bf16 = outcomes(Scenario(M, dtype="bfloat16")).results["weight_parity"].metrics
    assert bf16["tensors_failed"] == 0 and bf16["dtype"] == "bfloat16"


def test_fused_layout_is_compared_through_sglangs_names_and_padding_is_checked(outcomes: Outcomes):
    clean = outcomes(Scenario(M, "sglang_layout", layout="sglang")).results["weight_parity"]
    assert clean.metrics["tensors_unavailable"] == 0 and clean.metrics["nonzero_padding"] == 0
    assert any("via model.layers.0.mlp.gate_up_proj.weight" in w["note"] for w in clean.details["worst"])
    garbage = outcomes(Scenario(M, "vocab_padding_garbage", layout="sglang")).results["weight_parity"]
    failed = {w["name"]: w["note"] for w in garbage.details["worst"] if not w["ok"]}
    assert set(failed) == {"lm_head.weight", "model.embed_tokens.weight"} and garbage.metrics["nonzero_padding"] == 2
    assert all("non-zero padding" in note and "rows 384..447" in note for note in failed.values())
