"""Metrics compared between a run and its baseline, each with a declared tolerance.

A change is *drift* when ``|after - before| > max(abs, rel * |before|)``. It is *worse* when it
goes the wrong way for that metric (a lower pass rate, a larger parity error, a slower boot).
Policies may override the tolerances by metric name (see reports/examples/policy.yaml).

Timing figures (``boot_s``) are noise between two runs on one machine (a warm page cache halves a
boot), so they are not compared unless a policy names them in its ``tolerances:``; their default
tolerance below is only a suggestion shown in docs/reports.md.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any, final

from harness.results import ResultRecord, as_number


@final
@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How far a metric may move before it counts as drift."""

    abs: float = 0.0
    rel: float = 0.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> Tolerance:
        """``{abs: 0.02, rel: 0.1}``; both optional, both non-negative numbers."""
        bad = sorted(set(data) - {"abs", "rel"})
        if bad:
            raise ValueError(f"{where}: unknown key {bad[0]!r}; a tolerance has 'abs' and/or 'rel'")
        for key in ("abs", "rel"):
            value = data.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
                raise ValueError(f"{where}.{key}: expected a non-negative number, got {value!r}")
        return cls(float(data.get("abs", 0.0)), float(data.get("rel", 0.0)))

    def limit(self, before: float) -> float:
        return max(self.abs, self.rel * abs(before))


@final
@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One comparable figure: where it is read from, which way is better, its default tolerance."""

    name: str
    check: str | None  # None: any check
    keys: tuple[str, ...]
    higher_is_better: bool
    tolerance: Tolerance
    unit: str = ""
    timing: bool = False  # wall-clock noise: compared only when a policy sets its tolerance


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("accuracy.pass_rate", "accuracy", ("pass_rate",), True, Tolerance(abs=0.02)),
    MetricSpec("weight_parity.max_abs", "weight_parity", ("max_abs",), False, Tolerance(abs=1e-6, rel=0.5)),
    MetricSpec("logprob_parity.max_abs_delta", "logprob_parity", ("max_abs_delta",), False, Tolerance(abs=1e-3, rel=0.5)),
    MetricSpec("boot_s", None, ("boot_s",), False, Tolerance(abs=5.0, rel=0.5), "s", timing=True),
    MetricSpec("tokens_per_s", None, ("tokens_per_s", "tok_per_s", "tokens_per_second", "output_tokens_per_s",
                                      "throughput_tok_s"), True, Tolerance(rel=0.1), "tok/s"),
    MetricSpec("peak_memory", None, ("peak_memory_bytes", "peak_mem_bytes", "peak_memory_mb", "peak_mem_mb",
                                     "peak_memory_gib", "peak_mem_gib"), False, Tolerance(rel=0.1)),
)
METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)


@final
@dataclasses.dataclass(frozen=True)
class Drift:
    """A metric of one (cell, check) that moved beyond its tolerance since the baseline."""

    cell: str
    check: str
    metric: str
    key: str
    before: float
    after: float
    limit: float
    worse: bool


def metric_values(rec: ResultRecord) -> Iterator[tuple[MetricSpec, str, float]]:
    """Each (spec, key, value) a record carries; boot_s only on the cell's first check, once per cell."""
    m = rec.metrics or {}
    for spec in METRICS:
        if spec.check is not None and spec.check != rec.check:
            continue
        if spec.name == "boot_s":
            continue
        for key in spec.keys:
            value = as_number(m[key]) if key in m else None  # most keys are absent: skip the conversion
            if value is None and key == "pass_rate" and m.get("total"):
                value = as_number(m.get("correct", 0) / m["total"]) if isinstance(m.get("correct"), (int, float)) else None
            if value is not None:
                yield spec, key, value


def compare(cell: str, check: str, spec: MetricSpec, key: str, before: float, after: float,
            tolerance: Tolerance) -> Drift | None:
    """The drift between two values, or None when within tolerance."""
    if math.isnan(before) and math.isnan(after):
        return None
    if math.isnan(after) or math.isnan(before):
        return Drift(cell, check, spec.name, key, before, after, tolerance.limit(0.0), math.isnan(after))
    if before == after:
        return None
    limit = tolerance.limit(before) if math.isfinite(before) else 0.0
    delta = after - before
    if math.isfinite(delta) and abs(delta) <= limit:
        return None
    worse = delta < 0 if spec.higher_is_better else delta > 0
    return Drift(cell, check, spec.name, key, before, after, limit, worse)


def tolerances(overrides: Mapping[str, Tolerance] | None = None) -> dict[str, Tolerance]:
    """Each compared metric's tolerance: the default, unless a policy overrides it.

    Timing metrics are absent unless ``overrides`` names them: ``tolerances()`` has no ``boot_s``,
    ``tolerances({"boot_s": Tolerance(abs=30)})`` has.
    """
    out = {m.name: m.tolerance for m in METRICS if not m.timing}
    out.update(overrides or {})
    return out
