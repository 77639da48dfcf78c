"""The accuracy check against its reference cell: the same prompts, paired, with a fake runtime and store."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks import CHECKS
from harness.checks.accuracy import card_prompts
from harness.checks.base import CheckContext
from harness.config.cards import ModelCard
from harness.config.facts import load_facts
from harness.config.matrix import Cell
from harness.errors import RuntimeStartError
from harness.reference import store
from harness.runtimes.client import Generation

CARD = ModelCard.from_mapping({"name": "tiny-llama", "architecture": "LlamaForCausalLM",
                               "source": {"builder": {"arch": "llama"}},
                               "accuracy": {"threshold": 0.5, "min_detectable_drop": 0.25}}, "c")
FACTS = {f.prompt: f.answer for f in load_facts(CARD.facts_path)}


class FakeClient:
    """Answers every fact right except the prompts in ``wrong``."""

    def __init__(self, wrong: tuple[str, ...] = (), fault: str | None = None) -> None:
        self.wrong, self.fault, self.calls = wrong, fault, []

    def generate(self, prompts, *, max_new_tokens, top_logprobs=0):
        self.calls.append((len(prompts), max_new_tokens, top_logprobs))
        return [Generation(p, " nowhere." if p in self.wrong else f" {FACTS[p]}.", (1,), (-0.1,)) for p in prompts]

    def weight(self, name, truncate_rows=None):  # pragma: no cover - not used
        return None

    def server_info(self):
        return {"fault": self.fault}


@pytest.fixture
def ckpt(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("HARNESS_REFERENCE_DIR", str(tmp_path / "ref"))
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"weights")
    return tmp_path / "ckpt"


def run(ckpt: Path, client: FakeClient, offload: str = "none"):
    ctx = CheckContext(cell=Cell("hf", "cpu", CARD.name, offload), card=CARD, checkpoint=ckpt, client=client,
                       weight_layout="transformers")
    return CHECKS.get("accuracy").run(ctx)


def test_the_reference_cell_pairs_with_itself_and_caches_what_the_logprob_check_asks(ckpt):
    client = FakeClient()
    r = run(ckpt, client)
    assert r.status == "pass" and (r.metrics["paired_lost"], r.metrics["paired_gained"]) == (0, 0)
    assert r.metrics["paired_p_drop"] == 1.0 and r.metrics["reference_source"] == "self"
    assert r.metrics["reference_cell"] == "hf-cpu-tiny-llama-none" and r.metrics["reference_correct"] == 12
    assert client.calls[-1] == (12, CARD.max_new_tokens, CARD.logprob.top_k)  # the logprob check's request


def test_a_cell_that_loses_five_prompts_the_reference_answers_fails_the_paired_test_above_the_threshold(ckpt):
    run(ckpt, FakeClient())  # the reference cell fills the store
    prompts = card_prompts(CARD)
    r = run(ckpt, FakeClient(wrong=tuple(prompts[:5])), offload="disk")
    assert r.metrics["correct"] == 7 and r.metrics["threshold"] == 0.5  # the threshold passes
    assert r.status == "fail" and r.metrics["reference_source"] == "cache"
    assert (r.metrics["paired_lost"], r.metrics["paired_gained"]) == (5, 0)
    assert r.metrics["paired_p_drop"] == pytest.approx(1 / 32)
    assert r.reason.startswith("wrong-answer: paired vs reference hf-cpu-tiny-llama-none: 5 prompt(s) lost, 0 gained of 12")
    assert "p(drop) 0.0312 < α 0.05" in r.reason
    assert [row["prompt"] for row in r.details["paired"]] == prompts[:5]


def test_four_losses_are_not_significant_and_a_faulted_reference_cell_never_becomes_the_reference(ckpt, monkeypatch):
    booted = []

    def fake_boot(card, options, request, also=None, wait_for_cards=True):
        assert wait_for_cards is False  # inside a check the cell may hold the only card: never wait for one
        booted.append(request)
        return FakeClient().generate(list(request.prompts), max_new_tokens=request.max_new_tokens)

    monkeypatch.setattr(store, "boot_and_generate", fake_boot)
    prompts = card_prompts(CARD)
    r = run(ckpt, FakeClient(wrong=tuple(prompts[:4]), fault="attn_scaled"))
    assert len(booted) == 1 and r.metrics["reference_source"] == "computed"  # not its own faulted answers
    assert (r.metrics["paired_lost"], r.metrics["paired_p_drop"]) == (4, 0.0625) and r.status == "pass"


def test_the_power_plan_and_its_warning_are_on_the_result(ckpt):
    r = run(ckpt, FakeClient())
    assert (r.metrics["min_detectable_drop"], r.metrics["prompts_needed"]) == (0.25, 23)
    assert r.metrics["power_at_prompts"] < 0.8
    assert r.metrics["power_warning"].startswith("12 prompts cannot detect a 0.25 accuracy drop: that needs >= 23")


def test_without_a_reference_the_threshold_verdict_stands_and_the_result_says_why(ckpt, monkeypatch):
    def refuse(card, options, request, also=None, wait_for_cards=True):
        raise RuntimeStartError("boot-crash", "hf-cpu-tiny-llama-none", "no torch here", None)

    monkeypatch.setattr(store, "boot_and_generate", refuse)
    r = run(ckpt, FakeClient(), offload="disk")
    assert r.status == "pass" and "paired_lost" not in r.metrics
    assert r.metrics["paired_unavailable"].startswith("RuntimeStartError: boot-crash: hf-cpu-tiny-llama-none: no torch here")
    assert r.metrics["prompts_needed"] == 23
