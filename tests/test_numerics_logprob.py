"""Logprob parity: the per-token maths, and the check's verdicts naming the prompt and the token."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.checks import CHECKS, logprob_parity
from harness.checks.base import CheckContext
from harness.checks.parity import compare_generation, compare_generations
from harness.config.cards import DEFAULT_LOGPROB_THRESHOLDS, ModelCard
from harness.config.matrix import Cell
from harness.reference import store
from harness.runtimes.client import Generation

FP32 = DEFAULT_LOGPROB_THRESHOLDS["float32"]


def gen(prompt: str, tokens: list[int], lps: list[float], tops: list[list[tuple[int, float]]] | None = None) -> Generation:
    return Generation(prompt, "", tuple(tokens), tuple(lps), tuple(tuple(t) for t in tops or ()))


REF = gen("The capital of France is", [5, 6, 2], [-0.01, -0.2, -0.05],
          [[(5, -0.01), (9, -5.0), (8, -6.0)], [(6, -0.2), (7, -0.25), (9, -3.0)], [(2, -0.05), (4, -4.0), (9, -7.0)]])


def test_identical_answers_agree_fully():
    p = compare_generation(REF, REF, tie_margin=1e-4)
    assert (p.matched, p.comparable, p.max_abs_delta, p.min_topk_overlap, p.divergence) == (3, 3, 0.0, 1.0, None)


def test_a_small_logprob_shift_is_measured_at_its_step_and_token():
    got = dataclasses.replace(REF, logprobs=(-0.01, -0.2003, -0.05))
    p = compare_generation(REF, got, tie_margin=1e-4)
    assert p.worst_step == 1 and p.worst_token == 6 and p.max_abs_delta == pytest.approx(3e-4)
    parity = compare_generations([REF], [got], 1e-4)
    assert parity.failures(FP32) == ["max_abs_delta"]


def test_a_top_k_rival_moving_is_caught_even_when_the_chosen_token_barely_moves():
    tops = [list(s) for s in REF.top_logprobs]
    tops[0][1] = (9, -5.01)
    p = compare_generation(REF, dataclasses.replace(REF, top_logprobs=tuple(tuple(s) for s in tops)), 1e-4)
    assert p.max_abs_delta == 0.0 and p.max_topk_delta == pytest.approx(0.01) and p.topk_token == 9


def test_a_divergence_stops_the_comparison_and_counts_against_agreement():
    got = gen(REF.prompt, [5, 9, 3], [-0.01, -5.0, -1.0], [REF.top_logprobs[0], [(9, -5.0)], [(3, -1.0)]])
    p = compare_generation(REF, got, tie_margin=1e-4)
    assert p.matched == 1 and p.comparable == 3 and p.divergence.step == 1
    assert (p.divergence.ref_token, p.divergence.got_token, p.divergence.near_tie) == (6, 9, False)


def test_a_divergence_at_a_near_tie_is_benign():
    got = gen(REF.prompt, [5, 7], [-0.01, -0.21], [REF.top_logprobs[0], [(7, -0.21), (6, -0.22)]])
    p = compare_generation(REF, got, tie_margin=0.1)  # the reference itself put 7 only 0.05 below 6
    assert p.divergence.near_tie and p.comparable == p.matched == 1
    assert compare_generations([REF], [got], 0.1).token_agreement == 1.0


def test_top_k_overlap_and_extra_tokens():
    tops = [list(s) for s in REF.top_logprobs]
    tops[2] = [(2, -0.05), (11, -4.0), (12, -7.0)]
    got = dataclasses.replace(REF, token_ids=(5, 6, 2, 0), logprobs=(-0.01, -0.2, -0.05, -1.0),
                              top_logprobs=tuple(tuple(s) for s in tops))
    p = compare_generation(REF, got, tie_margin=1e-4)
    assert p.min_topk_overlap == pytest.approx(1 / 3) and p.overlap_step == 2
    assert p.divergence.step == 3 and p.divergence.ref_token is None  # the cell talks past the reference's end


# ---- the check, with a fake runtime and a temporary reference store --------------------------

class FakeClient:
    def __init__(self, answers: dict[str, Generation], fault: str | None = None) -> None:
        self.answers, self.fault, self.calls = answers, fault, 0

    def generate(self, prompts, *, max_new_tokens, top_logprobs=0):
        self.calls += 1
        return [self.answers[p] for p in prompts]

    def weight(self, name, truncate_rows=None):  # pragma: no cover - not used
        return None

    def server_info(self):
        return {"fault": self.fault}


@pytest.fixture
def setup(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HARNESS_REFERENCE_DIR", str(tmp_path / "ref"))
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "ckpt" / "tokenizer.json").write_text('{"model": {"vocab": {"\\u0120Paris": 6, "Lima": 9}}}')
    card = ModelCard.from_mapping({"name": "tiny-llama", "architecture": "LlamaForCausalLM",
                                   "source": {"builder": {"arch": "llama"}}}, "c")
    prompts = logprob_parity.card_prompts(card)
    ref = {p: dataclasses.replace(REF, prompt=p) for p in prompts}
    booted: list[int] = []

    def fake_boot(card, options, request, also=None, wait_for_cards=True):
        booted.append(1)
        return [ref[p] for p in request.prompts]

    monkeypatch.setattr(store, "boot_and_generate", fake_boot)
    return tmp_path / "ckpt", card, ref, booted


def check(ckpt: Path, card: ModelCard, client: FakeClient, offload: str = "none", dtype: str = "float32"):
    ctx = CheckContext(cell=Cell("hf", "cpu", card.name, offload, dtype), card=card, checkpoint=ckpt, client=client,
                       weight_layout="transformers")
    return CHECKS.get("logprob_parity").run(ctx)


def test_reference_cell_fills_the_cache_then_every_cell_reads_it(setup):
    ckpt, card, ref, booted = setup
    first = check(ckpt, card, FakeClient(ref))
    assert first.status == "pass" and first.metrics["reference_source"] == "self"
    disk = check(ckpt, card, FakeClient(ref), offload="disk")
    assert disk.metrics["reference_source"] == "cache" and disk.status == "pass" and not booted


def test_a_cell_without_cached_reference_boots_it_once(setup):
    ckpt, card, ref, booted = setup
    assert check(ckpt, card, FakeClient(ref), offload="disk").metrics["reference_source"] == "computed"
    assert check(ckpt, card, FakeClient(ref), dtype="bfloat16").metrics["reference_source"] == "cache"
    assert booted == [1]


def test_a_faulted_reference_cell_is_never_its_own_reference(setup):
    ckpt, card, ref, booted = setup
    bad = {p: dataclasses.replace(g, token_ids=(5, 9, 2)) for p, g in ref.items()}
    r = check(ckpt, card, FakeClient(bad, fault="attn_scaled"))
    assert r.metrics["reference_source"] == "computed" and r.metrics["runtime_fault"] == "attn_scaled"
    assert r.status == "fail"
    assert "prompt 'The capital of France is' step 1: reference token 6 'ĠParis', runtime 9 'Lima'" in r.reason


def test_thresholds_follow_the_cells_dtype(setup):
    ckpt, card, ref, _ = setup
    shifted = {p: dataclasses.replace(g, logprobs=(-0.01, -0.3, -0.05)) for p, g in ref.items()}
    check(ckpt, card, FakeClient(ref))  # fill the cache
    fp32 = check(ckpt, card, FakeClient(shifted), offload="disk")
    assert fp32.status == "fail" and "max |Δ logprob| 0.1 > 0.0001 at prompt" in fp32.reason
    assert "step 1 token 6 'ĠParis'" in fp32.reason
    bf16 = check(ckpt, card, FakeClient(shifted), dtype="bfloat16")
    assert bf16.status == "pass" and bf16.metrics["limit_max_abs_delta"] == 0.5
