"""Logprob parity: a cell's greedy answers against its model's reference cell (default hf, cpu, none, float32).

Per prompt it walks the reference's tokens: greedy-token agreement, |Δ logprob| on every chosen
token both agree on, and the overlap of their top-k alternatives, judged by the card's per-dtype
thresholds. The reference comes from the on-disk cache (harness/reference/store.py; an imported golden
lives there too), from the cell itself when it is the reference cell, or from booting the reference
runtime once, after a memory preflight that refuses (``preflight: ...``) one that will not fit.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.checks.accuracy import card_prompts
from harness.checks.base import CheckContext, CheckResult
from harness.checks.figure import Fact, Figure, number, percent, reference
from harness.checks.layer_divergence import LayerProbe
from harness.checks.meaning import EMPTY_ANSWERS, CheckDefaults
from harness.checks.parity import GenerationParity, PromptParity, compare_generations
from harness.config.cards import LogprobThresholds, ModelCard
from harness.reference.store import (
    Produced,
    ReferenceAnswers,
    ReferenceRequest,
    answers_for,
    checkpoint_digest,
    reference_cell,
    reference_spec,
)

LISTED = 10


def reference_request(card: ModelCard) -> ReferenceRequest:
    """What a card's reference is asked: every accuracy prompt, greedy, with the card's top-k."""
    return ReferenceRequest(tuple(card_prompts(card)), max(s.max_new_tokens for s in card.sets), card.logprob.top_k)


class TokenNames:
    """Token id -> its vocabulary string, read from the checkpoint's tokenizer.json (no tokenizer library)."""

    def __init__(self, checkpoint: Path) -> None:
        self.names: dict[int, str] = {}
        try:
            data = json.loads((Path(checkpoint) / "tokenizer.json").read_text())
            self.names = {int(i): str(t) for t, i in (data.get("model", {}).get("vocab") or {}).items()}
            self.names.update({int(a["id"]): str(a["content"]) for a in data.get("added_tokens") or ()})
        except (OSError, ValueError, AttributeError, TypeError, KeyError):
            pass

    def __call__(self, token: int | None) -> str:
        if token is None:
            return "(end of answer)"
        return f"{token} {self.names[token]!r}" if token in self.names else str(token)


class LogprobParityCheck(CheckDefaults):
    name = "logprob_parity"
    key_metric = "max_abs_delta"
    na_rules = (EMPTY_ANSWERS,)

    def figure(self, metrics: Mapping[str, Any], details: Mapping[str, Any]) -> Figure:
        return logprob_figure(metrics, details)

    def run(self, ctx: CheckContext) -> CheckResult:
        card, spec = ctx.card, reference_spec(ctx.options)
        request = reference_request(card)
        got = ctx.client.generate(list(request.prompts), max_new_tokens=request.max_new_tokens,
                                  top_logprobs=request.top_logprobs)
        info = ctx.client.server_info()
        fault = info.get("fault")
        own = ((lambda: Produced(tuple(got), dict(info.get("versions") or {})))
               if ctx.cell == reference_cell(card.name, spec) and not fault else None)
        probe = LayerProbe.of(ctx)  # the first divergent layer (layer_divergence.py), per --layer-diff
        # an accelerator reference came before this cell's boot (harness/plugin/refboot.py)
        ref = answers_for(card, ctx.options, checkpoint_digest(ctx.checkpoint), request, own=own, also=probe.keep,
                          wait_for_cards=False)
        thr = card.logprob.for_dtype(ctx.cell.dtype)
        parity = compare_generations(ref.generations, got, tie_margin=thr.max_abs_delta)
        result = _verdict(parity, thr, ref, TokenNames(ctx.checkpoint), ctx.cell.dtype, fault)
        return probe.judge(result, ctx.client, is_reference=own is not None, version=str(info.get("version") or ""))


def _verdict(parity: GenerationParity, thr: LogprobThresholds, ref: ReferenceAnswers, names: TokenNames,
             dtype: str, fault: Any) -> CheckResult:
    metrics: dict[str, Any] = {
        "max_abs_delta": round(parity.max_abs_delta, 8), "max_topk_delta": round(parity.max_topk_delta, 8),
        "token_agreement": round(parity.token_agreement, 4),
        "min_topk_overlap": round(parity.min_topk_overlap, 4), "prompts": len(parity.prompts),
        "prompts_diverged": len(parity.hard_divergences), "near_ties": parity.near_ties,
        "dtype": dtype, "limit_max_abs_delta": thr.max_abs_delta, "limit_max_topk_delta": thr.max_topk_delta,
        "limit_min_token_agreement": thr.min_token_agreement,
        "limit_min_topk_overlap": thr.min_topk_overlap,
        "reference_source": ref.source, "reference_key": ref.key[:16], "reference_s": ref.seconds,
        "reference_cell": ref.cell, "reference_origin": ref.origin,
    }
    if fault:
        metrics["runtime_fault"] = fault
    details = {"reference_path": str(ref.path),
               "prompts": [_prompt_detail(p, names) for p in sorted(parity.prompts, key=_badness)[:LISTED]]}
    failures = parity.failures(thr)
    if not failures:
        return CheckResult("pass", f"{len(parity.prompts)} prompts: tokens agree {parity.token_agreement:.0%}, "
                                   f"max |Δ logprob| {parity.max_abs_delta:.2g} <= {thr.max_abs_delta:g}, top-k "
                                   f"{parity.max_topk_delta:.2g} <= {thr.max_topk_delta:g} ({dtype}); "
                                   f"reference from {ref.source}", metrics, details)
    reasons = [_explain(f, parity, thr, names) for f in failures]
    return CheckResult("fail", f"parity: logprobs vs reference ({ref.source}), {dtype} thresholds: " + " | ".join(reasons),
                       metrics, details)


def logprob_figure(m: Mapping[str, Any], d: Mapping[str, Any]) -> Figure:
    """``max|Δ| 3.1e-7`` in the grid; each figure with its limit, the reference, the first divergent layer."""
    def limited(value: str, key: str, word: str = "limit") -> str:
        return f"{value} ({word} {number(m[key]) if word == 'limit' else percent(m[key])})" if value and key in m else value

    diverged = m.get("prompts_diverged")
    out = (Fact("prompts", f"{number(m.get('prompts'))}" + (f", {number(diverged)} diverged" if diverged else "")
                if m.get("prompts") is not None else ""),
           Fact("tokens agree", limited(percent(m.get("token_agreement")), "limit_min_token_agreement", "needs")),
           Fact("max |Δ logprob|", limited(number(m.get("max_abs_delta")), "limit_max_abs_delta")),
           Fact("top-k max |Δ|", limited(number(m.get("max_topk_delta")), "limit_max_topk_delta")),
           Fact("min top-k overlap", limited(percent(m.get("min_topk_overlap")), "limit_min_topk_overlap", "needs")),
           Fact("near ties", number(m.get("near_ties")) if m.get("near_ties") else ""),
           Fact("reference", reference(m)),
           Fact("reference file", str(d.get("reference_path") or "")),
           Fact("first divergent layer", str(m.get("layer_divergence") or "")))  # layer_divergence.py
    shown = {"prompts", "prompts_diverged", "token_agreement", "max_abs_delta", "max_topk_delta", "min_topk_overlap",
             "near_ties", "reference_source", "reference_s", "reference_cell", "reference_origin", "dtype",
             "reference_path", *(k for k in m if k.startswith(("limit_", "layer_")))}
    headline = f"max|Δ| {number(m['max_abs_delta'])}" if "max_abs_delta" in m else ""
    return Figure(headline, out, frozenset(shown))


def _explain(failure: str, parity: GenerationParity, thr: LogprobThresholds, names: TokenNames) -> str:
    if failure == "min_token_agreement":
        first = parity.hard_divergences[0]
        d = first.divergence
        assert d is not None
        return (f"greedy tokens agree {parity.token_agreement:.0%} < {thr.min_token_agreement:.0%}; first: prompt "
                f"{first.prompt!r} step {d.step}: reference token {names(d.ref_token)}, runtime {names(d.got_token)}")
    if failure == "max_abs_delta":
        p = parity.worst_delta()
        assert p is not None
        return (f"max |Δ logprob| {p.max_abs_delta:.3g} > {thr.max_abs_delta:g} at prompt {p.prompt!r} step "
                f"{p.worst_step} token {names(p.worst_token)}: reference {p.worst_ref_logprob:.6g}, "
                f"runtime {p.worst_got_logprob:.6g}")
    if failure == "max_topk_delta":
        p = parity.worst_topk_delta()
        assert p is not None
        return (f"max |Δ logprob| over top-k alternatives {p.max_topk_delta:.3g} > {thr.max_topk_delta:g} at prompt "
                f"{p.prompt!r} step {p.topk_step} alternative token {names(p.topk_token)}")
    p = parity.worst_overlap()
    assert p is not None
    return (f"top-k overlap {p.min_topk_overlap:.0%} < {thr.min_topk_overlap:.0%} at prompt {p.prompt!r} "
            f"step {p.overlap_step}")


def _badness(p: PromptParity) -> tuple[bool, float]:
    return (p.divergence is None or p.divergence.near_tie, -p.max_abs_delta)


def _prompt_detail(p: PromptParity, names: TokenNames) -> dict[str, Any]:
    d = p.divergence
    divergence = None if d is None else {"step": d.step, "reference": names(d.ref_token),
                                         "runtime": names(d.got_token), "near_tie": d.near_tie}
    return {"prompt": p.prompt, "matched": p.matched, "reference_tokens": p.ref_tokens,
            "max_abs_delta": p.max_abs_delta, "worst_step": p.worst_step,
            "worst_token": None if p.worst_token is None else names(p.worst_token),
            "max_topk_delta": p.max_topk_delta, "min_topk_overlap": p.min_topk_overlap, "divergence": divergence}


CHECK = LogprobParityCheck()
