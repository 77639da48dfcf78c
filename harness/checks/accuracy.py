"""Accuracy: each of the card's prompt sets, greedy, must contain its expected answers often enough,
and the cell must not answer significantly fewer of them right than its reference cell (the exact
McNemar test on the same prompts, harness/checks/accuracy_paired.py)."""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, final

from harness.checks import accuracy_paired
from harness.checks.base import CheckContext, CheckResult
from harness.checks.figure import Fact as Shown
from harness.checks.figure import Figure, as_number, number, percent
from harness.checks.meaning import EMPTY_ANSWERS, CheckDefaults
from harness.config.cards import AccuracySet, ModelCard
from harness.config.facts import Fact, load_facts
from harness.errors import HarnessError
from harness.runtimes.client import RuntimeClient
from harness.runtimes.generation import Generation


def contains_answer(text: str, answer: str) -> bool:
    """Whole-word, case-insensitive: ``'Paris.'`` contains Paris, ``'Parisian'`` does not."""
    return re.search(rf"(?<!\w){re.escape(answer)}(?!\w)", text, flags=re.IGNORECASE) is not None


@final
@dataclasses.dataclass(frozen=True)
class Question:
    """One scored prompt of a set, few-shot examples included, and its expected answer."""

    set_name: str
    fact: Fact
    prompt: str
    first_line_only: bool


def questions(fact_set: AccuracySet) -> list[Question]:
    """The set's scored prompts; with ``shots`` = 2 the first two facts become examples:

    ``"12 + 7 = 19\\n30 + 4 = 34\\n25 + 13 ="`` asks the third fact, and only the third is scored.
    """
    facts = load_facts(fact_set.path)
    shots, rest = facts[:fact_set.shots], facts[fact_set.shots:]
    prefix = "".join(f"{f.prompt} {f.answer}\n" for f in shots)
    return [Question(fact_set.name, f, prefix + f.prompt, fact_set.shots > 0) for f in rest]


def card_prompts(card: ModelCard) -> list[str]:
    """Every scored prompt of every set of the card, in order (the logprob check asks these too)."""
    return [q.prompt for s in card.sets for q in questions(s)]


def ask_sets(client: RuntimeClient, sets: Sequence[AccuracySet],
             asked: Sequence[Sequence[Question]]) -> list[list[Generation]]:
    """Each set's answers, with one generate call per distinct ``max_new_tokens`` (the runtime batches it).

    ``world`` and ``general`` at 8 new tokens go out together, ``arithmetic`` at 6 on its own.
    """
    out: list[list[Generation]] = [[] for _ in sets]
    for length in dict.fromkeys(s.max_new_tokens for s in sets):
        group = [i for i, s in enumerate(sets) if s.max_new_tokens == length]
        gens = client.generate([q.prompt for i in group for q in asked[i]], max_new_tokens=length)
        for i in group:
            out[i], gens = gens[:len(asked[i])], gens[len(asked[i]):]
    return out


def score_set(fact_set: AccuracySet, qs: Sequence[Question], gens: Sequence[Generation]) -> dict[str, Any]:
    """Count one set's right answers; few-shot answers are judged on their first line only."""
    answers: list[dict[str, Any]] = []
    # not strict: a reference entry read from the store is not checked against the prompts' count
    for q, g in zip(qs, gens, strict=False):
        judged = g.text.strip().split("\n", 1)[0] if q.first_line_only else g.text
        answers.append({"set": q.set_name, "prompt": q.fact.prompt, "expected": q.fact.answer, "got": g.text,
                        "ok": contains_answer(judged, q.fact.answer)})
    n, correct = len(answers), sum(a["ok"] for a in answers)
    rate = correct / n if n else 0.0
    return {"set": fact_set.name, "correct": correct, "total": n, "pass_rate": round(rate, 4),
            "stderr": _stderr(rate, n), "threshold": fact_set.threshold, "shots": fact_set.shots,
            "ok": rate >= fact_set.threshold, "answers": answers}


class AccuracyCheck(CheckDefaults):
    name = "accuracy"
    key_metric = "pass_rate"
    na_rules = (EMPTY_ANSWERS,)

    def figure(self, metrics: Mapping[str, Any], details: Mapping[str, Any]) -> Figure:
        return accuracy_figure(metrics)

    def warning(self, metrics: Mapping[str, Any]) -> str | None:
        """Too few prompts for the card's ``min_detectable_drop`` (accuracy_paired.power_metrics)."""
        return str(metrics["power_warning"]) if metrics.get("power_warning") else None

    def run(self, ctx: CheckContext) -> CheckResult:
        sets = ctx.card.sets
        asked = [questions(s) for s in sets]
        scored = [score_set(s, qs, gens) for s, qs, gens in zip(sets, asked, ask_sets(ctx.client, sets, asked), strict=True)]
        return _paired(ctx, asked, scored, _verdict(scored))


def _paired(ctx: CheckContext, asked: Sequence[Sequence[Question]], scored: Sequence[dict[str, Any]],
            result: CheckResult) -> CheckResult:
    """``result`` with the paired comparison against the reference cell and the card's power plan added;
    significantly fewer right answers than the reference fails the check."""
    answers = [a for s in scored for a in s["answers"]]
    try:
        refs, entries = accuracy_paired.reference_answers(ctx, ctx.card.sets, [[q.prompt for q in qs] for qs in asked])
    except HarnessError as exc:  # no reference here: the threshold verdict stands, the result says why
        return dataclasses.replace(result, metrics={**result.metrics, **accuracy_paired.unavailable(ctx.card, len(answers), exc)})
    ref_ok = [a["ok"] for s, qs, g in zip(ctx.card.sets, asked, refs, strict=True) for a in score_set(s, qs, g)["answers"]]
    metrics, rows, why = accuracy_paired.compare(ctx.card, [a["ok"] for a in answers], ref_ok,
                                                 [a["prompt"] for a in answers], entries)
    details = {**result.details, "paired": rows}
    if why is None:
        return dataclasses.replace(result, metrics={**result.metrics, **metrics}, details=details)
    reason = f"{result.reason} | {why}" if result.status == "fail" else f"wrong-answer: {why}"
    return CheckResult("fail", reason, {**result.metrics, **metrics}, details)


def _verdict(scored: Sequence[dict[str, Any]]) -> CheckResult:
    n = sum(s["total"] for s in scored)
    correct = sum(s["correct"] for s in scored)
    rate = correct / n if n else 0.0
    metrics: dict[str, Any] = {"correct": correct, "total": n, "pass_rate": round(rate, 4), "stderr": _stderr(rate, n)}
    if len(scored) == 1:
        metrics["threshold"] = scored[0]["threshold"]
    for s in scored:
        for k in ("correct", "total", "pass_rate", "stderr", "threshold"):
            metrics[f"{s['set']}.{k}"] = s[k]
    details = {"answers": [a for s in scored for a in s["answers"]],
               "sets": [{k: v for k, v in s.items() if k != "answers"} for s in scored]}
    failed = [s for s in scored if not s["ok"]]
    if not failed:
        return CheckResult("pass", "; ".join(f"{s['set']} {s['correct']}/{s['total']}" for s in scored)
                           if len(scored) > 1 else f"{correct}/{n} correct", metrics, details)
    parts = []
    for s in failed:
        wrong = next((a for a in s["answers"] if not a["ok"]), None)
        example = f"; e.g. {wrong['prompt']!r} -> {wrong['got']!r} (expected {wrong['expected']!r})" if wrong else ""
        parts.append(f"{s['set']} {s['correct']}/{s['total']} correct ({s['pass_rate']:.0%} ± {s['stderr'] or 0:.0%}), "
                     f"below threshold {s['threshold']:.0%}{example}")
    return CheckResult("fail", "wrong-answer: " + " | ".join(parts), metrics, details)


def accuracy_figure(m: Mapping[str, Any]) -> Figure:
    """``12/12`` in the grid; ``correct 12/12 (100%)``, ``needs ≥ 90%``, each set's count, the paired test."""
    out = []
    if "correct" in m and "total" in m:
        rate = f" ({percent(m['pass_rate'])})" if "pass_rate" in m else ""
        out.append(Shown("correct", f"{number(m['correct'])}/{number(m['total'])}{rate}"))
    if as_number(m.get("stderr")):
        out.append(Shown("std. error", f"± {percent(m['stderr'])}"))
    if "threshold" in m:
        out.append(Shown("needs", f"≥ {percent(m['threshold'])}"))
    sets = sorted({k.split(".", 1)[0] for k in m if "." in k})
    if len(sets) > 1:
        out += [Shown(f"set {s}", f"{number(m.get(f'{s}.correct'))}/{number(m.get(f'{s}.total'))}"
                                 f" (needs {percent(m.get(f'{s}.threshold'))})") for s in sets]
    headline = f"{m['correct']}/{m['total']}" if "correct" in m else ""
    shown = {"correct", "total", "pass_rate", "stderr", "threshold", *accuracy_paired.PAIRED_KEYS}
    return Figure(headline, tuple(out + accuracy_paired.paired_facts(m)), frozenset(shown))


def _stderr(rate: float, n: int) -> float | None:
    return round(math.sqrt(rate * (1 - rate) / n), 4) if n else None


CHECK = AccuracyCheck()
