"""How much of a checkpoint weight parity verified: elements by value, by digest, and not at all (why).

Counted in checkpoint elements, so a 128-expert stack weighs what it holds and a tensor compared
on its first 64 rows counts those rows only:

    tally = CoverageTally(total=1000)
    tally.by_value(600)
    tally.not_verified("lm_head.weight", 400, "sampled: truncate_rows=64")
    tally.metrics()["coverage"]   # 0.6
"""
from __future__ import annotations

import dataclasses
from typing import Any

LISTED = 20


def kind_of(why: str, rows: int | None, tp: int) -> str:
    """A short, name-free reason to group unverified elements by."""
    if "truncate_rows" in why:
        return f"sampled: truncate_rows={rows}"
    if "Triton" in why or "per tp rank" in why:
        return "digest not reproducible on this cell"
    if "this rank" in why or "tp shard" in why:
        return f"held by other tp ranks (tp={tp})"
    if "not exposed" in why:
        return "not exposed by the runtime"
    return why if len(why) <= 160 else why[:157] + "..."


@dataclasses.dataclass
class _Gap:
    elements: int = 0
    tensors: int = 0
    example: str = ""


@dataclasses.dataclass
class CoverageTally:
    """Accumulates one cell's coverage as tensors are settled (mutable: it is filled as they arrive)."""

    total: int
    value: int = 0
    digest: int = 0
    gaps: dict[str, _Gap] = dataclasses.field(default_factory=dict)

    def by_value(self, elements: int) -> None:
        self.value += elements

    def by_digest(self, elements: int) -> None:
        self.digest += elements

    def not_verified(self, name: str, elements: int, kind: str) -> None:
        if elements <= 0:
            return
        gap = self.gaps.setdefault(kind, _Gap(example=name))
        gap.elements += elements
        gap.tensors += 1

    @property
    def missing(self) -> int:
        return sum(g.elements for g in self.gaps.values())

    def fraction(self, elements: int) -> float:
        return elements / self.total if self.total else 1.0

    def metrics(self) -> dict[str, Any]:
        worst = max(self.gaps.items(), key=lambda kv: kv[1].elements, default=(None, None))[0]
        return {"coverage": self.fraction(self.value + self.digest), "coverage_by_value": self.fraction(self.value),
                "coverage_by_digest": self.fraction(self.digest), "coverage_not_verified": self.fraction(self.missing),
                "elements": self.total, "elements_by_value": self.value, "elements_by_digest": self.digest,
                "not_verified_why": worst}

    def details(self) -> list[dict[str, Any]]:
        ranked = sorted(self.gaps.items(), key=lambda kv: -kv[1].elements)[:LISTED]
        return [{"why": kind, "elements": g.elements, "fraction": self.fraction(g.elements), "tensors": g.tensors,
                 "example": g.example} for kind, g in ranked]

    def headline(self) -> str:
        """``100 % of the checkpoint verified`` or ``sampled 4.2 % (rest: sampled: truncate_rows=64)``."""
        covered = self.fraction(self.value + self.digest)
        if self.missing == 0:
            return "100 % of the checkpoint's elements verified"
        worst = self.metrics()["not_verified_why"]
        return f"sampled {_pct(covered)} of the checkpoint's elements (not verified: {worst})"


def _pct(x: float) -> str:
    return f"{x * 100:.3g} %" if x < 0.9995 or x == 1 else "99.9 %"
