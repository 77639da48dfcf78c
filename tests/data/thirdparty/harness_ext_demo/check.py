"""``repeatable_greedy``: the same greedy request twice gives the same tokens, and a real answer.

Declared as a class in the entry point; the harness instantiates it with no arguments.
"""
from __future__ import annotations

import itertools

from harness.checks.base import CheckContext, CheckResult
from harness.checks.meaning import CheckDefaults

PROMPT = "The capital of France is"
NEW_TOKENS = 8


class RepeatableGreedyCheck(CheckDefaults):  # no N/A rules, the generic figure, no warning
    name = "repeatable_greedy"
    key_metric = "tokens"

    def run(self, ctx: CheckContext) -> CheckResult:
        first, second = (ctx.client.generate([PROMPT], max_new_tokens=NEW_TOKENS)[0] for _ in range(2))
        metrics = {"tokens": len(first.token_ids)}
        details = {"prompt": PROMPT, "first": list(first.token_ids), "second": list(second.token_ids)}
        if first.token_ids != second.token_ids:
            at = next(i for i, (a, b) in enumerate(itertools.zip_longest(first.token_ids, second.token_ids)) if a != b)
            return CheckResult("fail", f"two greedy generations differ from token {at}", metrics, details)
        if not first.token_ids or not first.text.strip() or first.text.strip() == PROMPT:
            return CheckResult("fail", f"the answer {first.text!r} is empty or repeats the prompt", metrics, details)
        return CheckResult("pass", f"{len(first.token_ids)} tokens, the same twice", metrics, details)
