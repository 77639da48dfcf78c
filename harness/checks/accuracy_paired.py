"""Accuracy against the reference cell on the same prompts: the exact McNemar test, and the power plan.

The reference's answers come from the reference store like the logprob check's (harness/reference/store.py),
asked exactly as the accuracy check asks the cell: one request per answer length, greedy, with the
card's top-k. A card with one answer length asks what the logprob check asks, so both share one
cached entry (and one reference boot); each other length is one more entry.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.checks.base import CheckContext
from harness.checks.figure import Fact, number, percent, reference
from harness.config.cards import AccuracySet, ModelCard
from harness.config.pairedstats import mcnemar_exact
from harness.errors import HarnessError
from harness.reference.store import (
    Produced,
    ReferenceAnswers,
    ReferenceRequest,
    answers_for,
    checkpoint_digest,
    reference_cell,
    reference_spec,
)
from harness.runtimes.generation import Generation

LISTED = 20  # discordant prompts listed in the details (all of them are counted)


def reference_answers(ctx: CheckContext, sets: Sequence[AccuracySet], prompts: Sequence[Sequence[str]]
                      ) -> tuple[list[list[Generation]], list[ReferenceAnswers]]:
    """The reference's generations for each set's prompts (in order), and the store entries they came from."""
    card, spec = ctx.card, reference_spec(ctx.options)
    info = ctx.client.server_info()
    is_reference = ctx.cell == reference_cell(card.name, spec) and not info.get("fault")
    digest = checkpoint_digest(ctx.checkpoint)
    out: list[list[Generation]] = [[] for _ in sets]
    entries = []
    for group, request in length_requests(card, sets, prompts):
        own = _own(ctx, request, info) if is_reference else None
        # inside a check: an accelerator reference was prepared before the boot (refboot.py)
        ref = answers_for(card, ctx.options, digest, request, own=own, wait_for_cards=False)
        entries.append(ref)
        gens = list(ref.generations)
        for i in group:
            out[i], gens = gens[:len(prompts[i])], gens[len(prompts[i]):]
    return out, entries


def length_requests(card: ModelCard, sets: Sequence[AccuracySet], prompts: Sequence[Sequence[str]]
                    ) -> list[tuple[list[int], ReferenceRequest]]:
    """One reference request per answer length: the indices of its sets and what it asks."""
    out = []
    for length in dict.fromkeys(s.max_new_tokens for s in sets):
        group = [i for i, s in enumerate(sets) if s.max_new_tokens == length]
        out.append((group, ReferenceRequest(tuple(p for i in group for p in prompts[i]), length, card.logprob.top_k)))
    return out


def _own(ctx: CheckContext, request: ReferenceRequest, info: dict[str, Any]) -> Any:
    """The reference cell's own answers to ``request`` (asked only when the store has none)."""
    return lambda: Produced(tuple(ctx.client.generate(list(request.prompts), max_new_tokens=request.max_new_tokens,
                                                      top_logprobs=request.top_logprobs)),
                            dict(info.get("versions") or {}))


def compare(card: ModelCard, cell_ok: Sequence[bool], ref_ok: Sequence[bool], prompts: Sequence[str],
            refs: Sequence[ReferenceAnswers]) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    """Metrics, the discordant prompts, and a failure reason when the cell is significantly worse."""
    # not strict: ``ref_ok`` comes from a store entry whose count is not checked against the prompts
    lost = [p for p, c, r in zip(prompts, cell_ok, ref_ok, strict=False) if r and not c]
    gained = [p for p, c, r in zip(prompts, cell_ok, ref_ok, strict=False) if c and not r]
    test, spec = mcnemar_exact(len(lost), len(gained)), card.paired
    metrics: dict[str, Any] = {
        "reference_correct": sum(ref_ok), "paired_lost": test.lost, "paired_gained": test.gained,
        "paired_p_drop": round(test.p_drop, 6), "paired_p_two_sided": round(test.p_two_sided, 6),
        "paired_alpha": spec.alpha, "reference_cell": refs[0].cell if refs else "",
        "reference_source": ",".join(dict.fromkeys(r.source for r in refs)),
        "reference_origin": refs[0].origin if refs else "",
    }
    metrics.update(power_metrics(card, len(prompts)))
    rows = ([{"prompt": p, "reference": "right", "cell": "wrong"} for p in lost]
            + [{"prompt": p, "reference": "wrong", "cell": "right"} for p in gained])[:LISTED]
    worse = test.lost > test.gained and test.p_drop < spec.alpha
    why = (f"paired vs reference {metrics['reference_cell']}: {test.lost} prompt(s) lost, {test.gained} gained of "
           f"{len(prompts)}; exact McNemar p(drop) {test.p_drop:.3g} < α {spec.alpha:g}; e.g. {lost[0]!r}") if worse else None
    return metrics, rows, why


def power_metrics(card: ModelCard, prompts: int) -> dict[str, Any]:
    """The power plan of the card's ``min_detectable_drop`` for ``prompts`` prompts (empty without one)."""
    spec = card.paired
    needed, power = spec.pairs_needed(), spec.power_at(prompts)
    if needed is None or power is None:
        return {}
    out: dict[str, Any] = {"min_detectable_drop": spec.min_detectable_drop, "power_target": spec.power,
                           "assumed_discordance": spec.assumed_discordance, "prompts_needed": needed,
                           "power_at_prompts": round(power, 6)}
    warning = spec.shortfall(prompts)
    if warning:
        out["power_warning"] = warning
    return out


def unavailable(card: ModelCard, prompts: int, exc: HarnessError) -> dict[str, Any]:
    """Metrics when the reference could not be had: the power plan still holds, the test says why it is missing."""
    return {"paired_unavailable": f"{type(exc).__name__}: {exc}", **power_metrics(card, prompts)}


PAIRED_KEYS = ("reference_correct", "paired_lost", "paired_gained", "paired_p_drop", "paired_p_two_sided", "paired_alpha",
               "reference_cell", "reference_source", "reference_origin", "min_detectable_drop", "power_target",
               "assumed_discordance", "prompts_needed", "power_at_prompts", "power_warning", "paired_unavailable")


def paired_facts(m: Mapping[str, Any]) -> list[Fact]:
    """The comparison with the reference cell and the card's power plan, as the report words them."""
    out = []
    if "paired_lost" in m:
        out.append(Fact("vs reference", f"{number(m['paired_lost'])} lost, {number(m.get('paired_gained'))} gained · "
                                        f"exact McNemar p(drop) {number(m.get('paired_p_drop'))} "
                                        f"(α {number(m.get('paired_alpha'))}; two-sided p {number(m.get('paired_p_two_sided'))})"))
        out.append(Fact("reference answers", f"{number(m.get('reference_correct'))}/{number(m.get('total'))} right · "
                                             f"{reference(m)}"))
    if m.get("paired_unavailable"):
        out.append(Fact("vs reference", f"not compared: {m['paired_unavailable']}"))
    if "prompts_needed" in m:
        out.append(Fact("detectable drop", f"{number(m.get('min_detectable_drop'))} needs ≥ {number(m['prompts_needed'])} "
                                           f"prompts for power {percent(m.get('power_target'))}; power with "
                                           f"{number(m.get('total'))}: {percent(m.get('power_at_prompts'))}"))
    if m.get("power_warning"):
        out.append(Fact("warning", str(m["power_warning"])))
    return out
