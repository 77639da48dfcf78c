"""Numeric parity maths: per-tensor error figures (weights) and per-token figures (logprobs)."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import final

import numpy as np

from harness.config.cards import LogprobThresholds, Tolerance
from harness.numerics.tensordiff import figures
from harness.runtimes.generation import Generation


@final
@dataclasses.dataclass(frozen=True)
class TensorParity:
    """How far the runtime's tensor is from the checkpoint's."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    cosine: float
    frac_outside: float
    ok: bool
    note: str = ""
    padding_max_abs: float = 0.0
    tol_ratio: float = 0.0  # max |got - want| / (atol + rtol * |want|): > 1 is outside tolerance

    def as_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        return d


def compare(name: str, got: np.ndarray, want: np.ndarray, tol: Tolerance, *,
            padding_max_abs: float = 0.0, note: str = "", want_finite: bool = False) -> TensorParity:
    """Compare two arrays; a shape mismatch is a failure with max errors set to inf.

    ``padding_max_abs``: the largest |value| in padding the layout cut off (vocab rows); any
    non-zero padding fails the tensor, and ``note`` says where it was. ``want_finite``: ``want`` is
    known to hold only finite values (equal bytes then need no finiteness pass).

    >>> from harness.config.cards import Tolerance
    >>> compare("w", np.ones(3), np.ones(3), Tolerance(0, 0)).ok
    True
    """
    result = _compare(name, got, want, tol, want_finite)
    notes = [n for n in (result.note, note) if n]
    return dataclasses.replace(result, ok=result.ok and padding_max_abs == 0.0, note="; ".join(notes),
                               padding_max_abs=padding_max_abs)


def _compare(name: str, got: np.ndarray, want: np.ndarray, tol: Tolerance, want_finite: bool = False) -> TensorParity:
    if got.shape != want.shape:
        return TensorParity(name, tuple(want.shape), float("inf"), float("inf"), float("nan"), 1.0, False,
                            f"shape {tuple(got.shape)} != checkpoint {tuple(want.shape)}", tol_ratio=float("inf"))
    f = figures(got, want, tol, want_finite=want_finite)
    return TensorParity(name=name, shape=tuple(want.shape), max_abs=f.max_abs, max_rel=f.max_rel, cosine=f.cosine,
                        frac_outside=f.frac_outside, ok=f.ok, note="" if f.finite else "non-finite values",
                        tol_ratio=f.tol_ratio)


def worst_first(results: list[TensorParity]) -> list[TensorParity]:
    """Failures first, then by fraction outside tolerance and max abs error, largest first."""
    return sorted(results, key=lambda r: (r.ok, -r.frac_outside, -_num(r.max_abs)))


def _num(x: float) -> float:
    return x if np.isfinite(x) else 1e300


@final
@dataclasses.dataclass(frozen=True)
class Divergence:
    """Where a cell's greedy tokens first leave the reference's."""

    step: int
    ref_token: int | None
    got_token: int | None
    near_tie: bool


@final
@dataclasses.dataclass(frozen=True)
class PromptParity:
    """One prompt's greedy answer against the reference's, over the tokens both chose alike."""

    prompt: str
    ref_tokens: int
    matched: int
    comparable: int
    max_abs_delta: float
    worst_step: int | None
    worst_token: int | None
    worst_ref_logprob: float | None
    worst_got_logprob: float | None
    min_topk_overlap: float
    overlap_step: int | None
    divergence: Divergence | None
    max_topk_delta: float = 0.0
    topk_step: int | None = None
    topk_token: int | None = None


def compare_generation(ref: Generation, got: Generation, tie_margin: float) -> PromptParity:
    """Walk the reference's tokens until the cell's differ; logprobs compare only before that.

    A divergence is a near tie when the reference itself ranked the cell's token within
    ``tie_margin`` nats of its own choice: benign, not counted against token agreement.
    """
    # max |Δ| and where: step, token, reference and runtime logprob
    worst: tuple[float, int | None, int | None, float | None, float | None] = (0.0, None, None, None, None)
    overlap, overlap_step = 1.0, None
    topk: tuple[float, int | None, int | None] = (0.0, None, None)  # max top-k |Δ|, step, alternative token
    matched, divergence = 0, None
    for step, tok in enumerate(ref.token_ids):
        got_tok = got.token_ids[step] if step < len(got.token_ids) else None
        if got_tok != tok:
            divergence = Divergence(step, tok, got_tok, _near_tie(ref, step, got_tok, tie_margin))
            break
        matched += 1
        delta = abs(got.logprobs[step] - ref.logprobs[step])
        if delta > worst[0] or not np.isfinite(delta):
            worst = (delta, step, tok, ref.logprobs[step], got.logprobs[step])
        share = _topk_share(ref, got, step)
        if share is not None and share < overlap:
            overlap, overlap_step = share, step
        alt_delta, alt_tok = _topk_delta(ref, got, step)
        if alt_delta > topk[0]:
            topk = (alt_delta, step, alt_tok)
    if divergence is None and len(got.token_ids) > len(ref.token_ids):
        divergence = Divergence(len(ref.token_ids), None, got.token_ids[len(ref.token_ids)], False)
    tie = divergence is not None and divergence.near_tie
    comparable = matched if tie else max(len(ref.token_ids), matched + (divergence is not None))
    return PromptParity(ref.prompt, len(ref.token_ids), matched, comparable, float(worst[0]), worst[1], worst[2],
                        worst[3], worst[4], overlap, overlap_step, divergence, float(topk[0]), topk[1], topk[2])


@final
@dataclasses.dataclass(frozen=True)
class GenerationParity:
    """All prompts of a cell against the reference: the figures the thresholds judge."""

    prompts: tuple[PromptParity, ...]

    @property
    def token_agreement(self) -> float:
        total = sum(p.comparable for p in self.prompts)
        return sum(p.matched for p in self.prompts) / total if total else 1.0

    @property
    def max_abs_delta(self) -> float:
        return max((p.max_abs_delta for p in self.prompts), default=0.0)

    @property
    def max_topk_delta(self) -> float:
        return max((p.max_topk_delta for p in self.prompts), default=0.0)

    @property
    def min_topk_overlap(self) -> float:
        return min((p.min_topk_overlap for p in self.prompts), default=1.0)

    @property
    def hard_divergences(self) -> list[PromptParity]:
        return [p for p in self.prompts if p.divergence is not None and not p.divergence.near_tie]

    @property
    def near_ties(self) -> int:
        return sum(1 for p in self.prompts if p.divergence is not None and p.divergence.near_tie)

    def worst_delta(self) -> PromptParity | None:
        return max(self.prompts, key=lambda p: p.max_abs_delta, default=None)

    def worst_topk_delta(self) -> PromptParity | None:
        return max(self.prompts, key=lambda p: p.max_topk_delta, default=None)

    def worst_overlap(self) -> PromptParity | None:
        return min(self.prompts, key=lambda p: p.min_topk_overlap, default=None)

    def failures(self, thr: LogprobThresholds) -> list[str]:
        """Which thresholds are not met, by name (empty when the cell passes)."""
        out = []
        if self.token_agreement < thr.min_token_agreement:
            out.append("min_token_agreement")
        if not self.max_abs_delta <= thr.max_abs_delta:
            out.append("max_abs_delta")
        if not self.max_topk_delta <= thr.max_topk_delta:
            out.append("max_topk_delta")
        if self.min_topk_overlap < thr.min_topk_overlap:
            out.append("min_topk_overlap")
        return out


def compare_generations(refs: Sequence[Generation], gots: Sequence[Generation], tie_margin: float) -> GenerationParity:
    """Prompt by prompt; the two lists answer the same prompts in the same order."""
    if [r.prompt for r in refs] != [g.prompt for g in gots]:
        raise ValueError("reference and cell answered different prompts; ask both the same prompts in the same order")
    return GenerationParity(tuple(compare_generation(r, g, tie_margin) for r, g in zip(refs, gots, strict=True)))


def _near_tie(ref: Generation, step: int, got_tok: int | None, margin: float) -> bool:
    if got_tok is None or step >= len(ref.top_logprobs):
        return False
    alt = dict(ref.top_logprobs[step]).get(got_tok)
    return alt is not None and ref.logprobs[step] - alt <= margin


def _topk_delta(ref: Generation, got: Generation, step: int) -> tuple[float, int | None]:
    """The largest |Δ logprob| over the top-k alternatives both list at this step, and its token."""
    if step >= len(ref.top_logprobs) or step >= len(got.top_logprobs):
        return 0.0, None
    have = dict(got.top_logprobs[step])
    deltas = [(abs(have[t] - lp), t) for t, lp in ref.top_logprobs[step] if t in have]
    return max(deltas, default=(0.0, None))


def _topk_share(ref: Generation, got: Generation, step: int) -> float | None:
    if step >= len(ref.top_logprobs) or step >= len(got.top_logprobs) or not ref.top_logprobs[step]:
        return None
    want = {t for t, _ in ref.top_logprobs[step]}
    have = {t for t, _ in got.top_logprobs[step]}
    return len(want & have) / len(want)
