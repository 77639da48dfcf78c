"""How far each injected fault lands from the limits of the checks that judge it.

A margin is observed / limit, with every limit turned into an "excess" that trips above 1:

    weight_parity   tolerance       max |got - want| / (atol + rtol * |want|) over every tensor
                    padding         largest non-zero vocab padding value (limit 0: any non-zero trips)
    logprob_parity  max_abs_delta   chosen-token |Δ logprob| / its limit
                    max_topk_delta  top-k alternatives' |Δ logprob| / its limit
                    token_agreement (1 - agreement) / (1 - min agreement)
                    topk_overlap    (1 - overlap) / (1 - min overlap)
    accuracy        threshold       (1 - pass rate) / (1 - threshold), worst set

A fault meant to be caught must clear the limit it probes by CAUGHT_MARGIN (2x); a check meant to
pass must stay under every limit by the same factor (observed <= limit / 2). On CPU float32 these
figures are properties of the fault, so values on a limit (a flaky verdict from one machine to the
next) fail here, by name, instead of somewhere downstream.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from harness.checks import CheckResult

CAUGHT_MARGIN = 2.0
CHECK_NAMES = ("weight_parity", "logprob_parity", "accuracy")
DEFAULT_PROBES: dict[str, str] = {"weight_parity": "tolerance", "logprob_parity": "max_abs_delta",
                                  "accuracy": "threshold"}


@dataclasses.dataclass(frozen=True)
class Margin:
    """One limit of one check: what was observed, against what, as a ratio (> 1 trips)."""

    check: str
    limit: str
    observed: float
    bound: float

    @property
    def ratio(self) -> float:
        if self.bound > 0:
            return self.observed / self.bound
        return math.inf if self.observed > 0 else 0.0

    def text(self) -> str:
        return f"{self.limit} {_x(self.ratio)} ({self.observed:.3g} vs {self.bound:.3g})"


def margins(check: str, result: CheckResult) -> tuple[Margin, ...]:
    """Every limit of ``check`` as a Margin, read from the result's metrics and details."""
    m = result.metrics
    if check == "weight_parity":
        padding = max((float(w.get("padding_max_abs") or 0.0) for w in result.details.get("worst", ())), default=0.0)
        return (Margin(check, "tolerance", float(m.get("max_tol_ratio") or 0.0), 1.0),
                Margin(check, "padding", padding, 0.0))
    if check == "logprob_parity":
        return (Margin(check, "max_abs_delta", m["max_abs_delta"], m["limit_max_abs_delta"]),
                Margin(check, "max_topk_delta", m["max_topk_delta"], m["limit_max_topk_delta"]),
                Margin(check, "token_agreement", 1 - m["token_agreement"], 1 - m["limit_min_token_agreement"]),
                Margin(check, "topk_overlap", 1 - m["min_topk_overlap"], 1 - m["limit_min_topk_overlap"]))
    if check == "accuracy":
        return (max((Margin(check, "threshold", 1 - rate, 1 - thr) for rate, thr in _accuracy_sets(m)),
                    key=lambda g: g.ratio),)
    raise ValueError(f"no margins known for check {check!r}; known: {', '.join(CHECK_NAMES)}")


def _accuracy_sets(m: Mapping[str, Any]) -> list[tuple[float, float]]:
    """(pass rate, threshold) per fact set: ``<set>.pass_rate`` keys, else the card-level pair."""
    sets = [k[: -len(".threshold")] for k in m if k.endswith(".threshold")]
    if sets:
        return [(m[f"{s}.pass_rate"], m[f"{s}.threshold"]) for s in sets]
    return [(m["pass_rate"], m["threshold"])]


@dataclasses.dataclass(frozen=True)
class ScenarioMargins:
    """A scenario's margins on every check, judged by the statuses the table expects of it."""

    scenario: str
    expected: Mapping[str, str]  # check -> "pass" | "fail"
    probes: Mapping[str, str]  # check -> the limit a caught fault must clear
    by_check: Mapping[str, tuple[Margin, ...]]

    @classmethod
    def of(cls, scenario: str, results: Mapping[str, CheckResult], expected: tuple[str, ...],
           probes: Mapping[str, str] | None = None) -> ScenarioMargins:
        return cls(scenario, dict(zip(CHECK_NAMES, expected)), {**DEFAULT_PROBES, **(probes or {})},
                   {c: margins(c, results[c]) for c in CHECK_NAMES})

    def problems(self) -> list[str]:
        """What misses its margin, each saying the value, the limit and the fix; empty when all clear."""
        out = []
        for check, want in self.expected.items():
            if want == "fail":
                probe = next(g for g in self.by_check[check] if g.limit == self.probes[check])
                if not probe.ratio >= CAUGHT_MARGIN:
                    out.append(f"{self.scenario}: {check} should catch it by {probe.text()}, under "
                               f"{CAUGHT_MARGIN:g}x the limit; strengthen the fault (harness/runtimes/hf_faults.py) "
                               f"or probe a limit it clears")
                continue
            for g in self.by_check[check]:
                if not g.ratio <= 1 / CAUGHT_MARGIN:
                    out.append(f"{self.scenario}: {check} should pass with room but {g.text()} is over half "
                               f"the limit; weaken the fault or make the limit fit the benign difference")
        return out

    def line(self) -> str:
        """One terminal line: every limit's ratio, the probed one of a caught check marked '*'."""
        parts = []
        for check, want in self.expected.items():
            mark = {"fail": "caught", "pass": "passes"}.get(want, want)
            shown = [f"{g.limit}{'*' if want == 'fail' and g.limit == self.probes[check] else ''} {_x(g.ratio)}"
                     for g in self.by_check[check]]
            parts.append(f"{check} {mark}: {', '.join(shown)}")
        return f"{self.scenario}  " + " | ".join(parts)


def _x(ratio: float) -> str:
    return "inf x" if math.isinf(ratio) else f"{ratio:.3g}x"
