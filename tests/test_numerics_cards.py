"""Cards: several accuracy sets with their own thresholds (one `facts:` name still works), logprob
thresholds per dtype, the shipped sets, and the accuracy check scoring each set."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks.accuracy import CHECK, questions
from harness.checks.base import CheckContext
from harness.config.cards import DEFAULT_LOGPROB_THRESHOLDS, FACTS_DIR, AccuracySet, ModelCard, load_card, load_cards
from harness.config.facts import load_facts
from harness.config.matrix import Cell
from harness.errors import ConfigError
from harness.runtimes.client import Generation

BASE = {"name": "x", "architecture": "A", "source": {"path": "p"}}


def test_one_facts_name_is_one_set_with_the_card_threshold():
    card = ModelCard.from_mapping({**BASE, "facts": "world", "accuracy": {"threshold": 0.7, "max_new_tokens": 5}}, "x")
    assert card.sets == (AccuracySet("world", 0.7, 5),) and card.facts == "world" and card.threshold == 0.7


def test_a_list_of_sets_keeps_per_set_thresholds_and_defaults():
    card = ModelCard.from_mapping({**BASE, "accuracy": {"threshold": 0.8},
                                   "facts": ["world", {"set": "arithmetic", "threshold": 0.6, "shots": 4}]}, "x")
    assert card.sets == (AccuracySet("world", 0.8, 6), AccuracySet("arithmetic", 0.6, 6, 4))
    assert card.facts == "world"  # the first set still builds zoo models


@pytest.mark.parametrize("facts, expect", [
    ([], "empty list"),
    (["world", "world"], "names a set twice"),
    ([{"set": "world", "threshold": 2}], "threshold in [0, 1]"),
    ([{"name": "world"}], "a facts item is a set name or"),
])
def test_bad_sets_say_what_and_how(facts, expect):
    with pytest.raises(ConfigError, match=expect.replace("[", r"\[").replace("]", r"\]")):
        ModelCard.from_mapping({**BASE, "facts": facts}, "x.yaml")


def test_a_missing_set_file_lists_the_known_ones(tmp_path: Path):
    path = tmp_path / "x.yaml"
    path.write_text("name: x\narchitecture: A\nsource: {path: p}\nfacts: [world, nosuchset]\n")
    with pytest.raises(ConfigError, match="facts 'nosuchset' not found .* known: .*arithmetic"):
        load_card(path)


def test_logprob_thresholds_default_per_dtype_and_override_per_field():
    card = ModelCard.from_mapping({**BASE, "logprob": {"top_k": 3, "thresholds": {"bfloat16": {"max_abs_delta": 0.3}}}}, "x")
    assert card.logprob.top_k == 3
    bf16 = card.logprob.for_dtype("bfloat16")
    assert bf16.max_abs_delta == 0.3 and bf16.max_topk_delta == DEFAULT_LOGPROB_THRESHOLDS["bfloat16"].max_topk_delta
    assert card.logprob.for_dtype("float32") == DEFAULT_LOGPROB_THRESHOLDS["float32"]
    fp32, bf = DEFAULT_LOGPROB_THRESHOLDS["float32"], DEFAULT_LOGPROB_THRESHOLDS["bfloat16"]
    assert fp32.max_abs_delta < bf.max_abs_delta and fp32.min_token_agreement >= bf.min_token_agreement


@pytest.mark.parametrize("logprob, expect", [
    ({"top_k": 0}, "top_k must be a positive integer"),
    ({"thresholds": {"float32": {"max_abs": 1}}}, r"unknown field\(s\) \['max_abs'\]"),
    ({"thresholds": {"float32": {"min_topk_overlap": 1.5}}}, "fractions within"),
    ({"colour": 1}, "'logprob' takes"),
])
def test_bad_logprob_blocks_say_what_and_how(logprob, expect):
    with pytest.raises(ConfigError, match=expect):
        ModelCard.from_mapping({**BASE, "logprob": logprob}, "x.yaml")


def test_real_model_cards_ship_factual_and_few_shot_arithmetic_sets():
    for card in (c for c in load_cards().values() if "real" in c.tags):
        names = {s.name: s for s in card.sets}
        assert {"world", "general", "arithmetic"} <= set(names), card.name
        assert names["arithmetic"].shots > 0 and 0 < names["arithmetic"].threshold <= 1


def test_the_arithmetic_set_is_right():
    for fact in load_facts(FACTS_DIR / "arithmetic.yaml"):
        a, op, b, eq = fact.prompt.split()
        assert eq == "=" and str({"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]) == fact.answer


def test_few_shot_questions_carry_worked_examples_and_score_the_rest():
    facts = load_facts(FACTS_DIR / "arithmetic.yaml")
    qs = questions(AccuracySet("arithmetic", 0.7, 6, shots=2))
    assert len(qs) == len(facts) - 2
    assert qs[0].prompt == f"{facts[0].prompt} {facts[0].answer}\n{facts[1].prompt} {facts[1].answer}\n{facts[2].prompt}"


class Answers:
    """A fake runtime that answers right except for the prompts it is told to get wrong."""

    def __init__(self, wrong: set[str]) -> None:
        self.wrong = wrong

    def generate(self, prompts, *, max_new_tokens, top_logprobs=0):
        out = []
        for p in prompts:
            fact = next(f for s in ("world", "arithmetic") for f in load_facts(FACTS_DIR / f"{s}.yaml")
                        if p.endswith(f.prompt))
            text = " 0\n" if fact.prompt in self.wrong else f" {fact.answer}\n1 + 1 = 3"
            out.append(Generation(p, text, (), ()))
        return out

    def server_info(self):
        return {}


def accuracy(wrong: set[str], store: Path):
    """The check on the reference cell with an empty reference store: its own answers are the reference
    (nothing discordant), so only the thresholds judge."""
    card = ModelCard.from_mapping({**BASE, "facts": [{"set": "world", "threshold": 0.9},
                                                     {"set": "arithmetic", "threshold": 0.5, "shots": 4}]}, "x")
    ctx = CheckContext(Cell("hf", "cpu", "x", "none"), card, store, Answers(wrong), "transformers")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_REFERENCE_DIR", str(store / "reference"))
        return CHECK.run(ctx)


def test_each_set_is_judged_by_its_own_threshold_with_its_standard_error(tmp_path):
    ok = accuracy(set(), tmp_path / "1")
    assert ok.status == "pass" and ok.metrics["world.pass_rate"] == 1.0 and ok.metrics["arithmetic.total"] == 24
    assert ok.metrics["reference_source"] == "self" and ok.metrics["paired_lost"] == 0
    arith = [f.prompt for f in load_facts(FACTS_DIR / "arithmetic.yaml")][4:14]
    bad = accuracy(set(arith), tmp_path / "2")  # 10/24 wrong: 58 % >= 50 %, still passes
    assert bad.status == "pass" and bad.metrics["arithmetic.stderr"] > 0
    worse = accuracy(set(arith) | {"The capital of France is", "The capital of Peru is"}, tmp_path / "3")  # world: 10/12 < 90 %
    assert worse.status == "fail" and worse.reason.startswith("wrong-answer: world 10/12 correct (83% ± 11%)")
    assert "arithmetic" not in worse.reason and "'The capital of France is' -> ' 0\\n'" in worse.reason


def test_no_shipped_card_samples_weight_parity():
    """Full coverage by default: the hf runtime streams binary and SGLang compares by digest, so no
    shipped card limits weight parity to the first rows of each tensor (``parity.truncate_rows``)."""
    sampled = {name: card.truncate_rows for name, card in load_cards().items() if card.truncate_rows is not None}
    assert sampled == {}
