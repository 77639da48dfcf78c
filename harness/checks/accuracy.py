"""Accuracy: the card's prompts, greedy, must contain their expected answers often enough."""
from __future__ import annotations

import math
import re

from harness.cards import ModelCard
from harness.checks.base import CheckContext, CheckResult
from harness.facts import load_facts
from harness.matrix import Cell


def contains_answer(text: str, answer: str) -> bool:
    """Whole-word, case-insensitive: ``'Paris.'`` contains Paris, ``'Parisian'`` does not."""
    return re.search(rf"(?<!\w){re.escape(answer)}(?!\w)", text, flags=re.IGNORECASE) is not None


class AccuracyCheck:
    name = "accuracy"
    key_metric = "pass_rate"

    def na_reason(self, cell: Cell, card: ModelCard) -> str | None:
        if cell.offload == "meta":
            return "meta offload creates empty weights on every use by design: its answers are garbage"
        return None

    def run(self, ctx: CheckContext) -> CheckResult:
        facts = load_facts(ctx.card.facts_path)
        gens = ctx.client.generate([f.prompt for f in facts], max_new_tokens=ctx.card.max_new_tokens)
        answers = [
            {"prompt": f.prompt, "expected": f.answer, "got": g.text, "ok": contains_answer(g.text, f.answer)}
            for f, g in zip(facts, gens)
        ]
        n = len(answers)
        correct = sum(a["ok"] for a in answers)
        rate = correct / n if n else 0.0
        metrics = {"correct": correct, "total": n, "pass_rate": round(rate, 4),
                   "stderr": round(math.sqrt(rate * (1 - rate) / n), 4) if n else None,
                   "threshold": ctx.card.threshold}
        details = {"answers": answers}
        if rate >= ctx.card.threshold:
            return CheckResult("pass", f"{correct}/{n} correct", metrics, details)
        wrong = next(a for a in answers if not a["ok"])
        reason = (f"wrong-answer: {correct}/{n} correct, below threshold {ctx.card.threshold:.0%}; "
                  f"e.g. {wrong['prompt']!r} -> {wrong['got']!r} (expected {wrong['expected']!r})")
        return CheckResult("fail", reason, metrics, details)


CHECK = AccuracyCheck()
