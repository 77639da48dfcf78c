"""The report draws a result from what its check declares (figure, warning, tensor table), never from the
check's name; a check not registered in this install still renders, generically."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.checks import CHECKS
from harness.checks.figure import Fact, Figure
from harness.checks.meaning import CheckDefaults
from harness.registry import Registry
from harness.reports import figures
from harness.reports.builder import ReportInputs, build_data
from harness.reports.data import figure, result_warnings
from tests.reportruns import rec, write_run

CELL = "hf-cpu-tiny-llama-none"


class Latency(CheckDefaults):
    """A third party's check: its own headline, a warning, and its tensors under ``slowest``."""

    name, key_metric = "latency", "p50_ms"
    tensor_table = "slowest"

    def figure(self, metrics: Mapping[str, Any], details: Mapping[str, Any]) -> Figure:
        return Figure(f"p50 {metrics['p50_ms']} ms", (Fact("median", f"{metrics['p50_ms']} ms"),), frozenset({"p50_ms"}))

    def warning(self, metrics: Mapping[str, Any]) -> str | None:
        return "only 3 samples" if metrics.get("samples", 99) < 10 else None


@pytest.fixture
def latency_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    registry: Registry = Registry("check")
    for name in CHECKS:
        registry.register(name, CHECKS.get(name))
    registry.register("latency", Latency())
    monkeypatch.setattr(figures, "CHECKS", registry)


def latency(**metrics: Any):
    return rec(CELL, "latency", "pass", metrics=metrics,
               details={"slowest": [{"name": "lm_head.weight", "shape": [8, 4], "max_abs": 0.5, "ok": True}]})


def test_a_check_not_registered_here_renders_with_the_generic_figure():
    r = latency(p50_ms=3.5, samples=3)
    assert figure(r) == "p50 ms 3.5"
    assert figures.facts("latency", r.metrics, r.details) == (Fact("p50 ms", "3.5"), Fact("samples", "3"))
    assert result_warnings([r]) == ()
    assert figure(rec(CELL, "latency", "pass")) == "pass"  # no metrics at all: its status


def test_a_registered_check_draws_its_own_headline_facts_and_warning(latency_registered):
    r = latency(p50_ms=3.5, samples=3)
    assert figure(r) == "p50 3.5 ms"
    assert figures.facts("latency", r.metrics, {}) == (Fact("median", "3.5 ms"), Fact("samples", "3"))
    assert result_warnings([r, latency(p50_ms=1, samples=50)]) == ("tiny-llama latency: only 3 samples",)


def test_the_drill_shows_the_tensor_table_the_check_names(latency_registered, tmp_path: Path):
    run = write_run(tmp_path / "run", [latency(p50_ms=3.5, samples=3), rec(CELL, "accuracy", "pass")])
    data, _ = build_data(ReportInputs.from_env(run, environ={}, history=tmp_path / "history"))
    drill = {c.check: c for d in data.drills for c in d.checks}
    assert [t.name for t in drill["latency"].tensors] == ["lm_head.weight"]
    assert not any(t.title == "slowest" for t in drill["latency"].tables)  # shown once, as tensors
    assert drill["accuracy"].tensors == () and drill["accuracy"].figure == "12/12"
    assert data.warnings == ("tiny-llama latency: only 3 samples",)


def test_the_built_in_figures_read_as_before():
    acc = rec(CELL, "accuracy", "pass", metrics={"correct": 12, "total": 12, "pass_rate": 1.0, "power_warning": "too few"})
    assert figure(acc) == "12/12"
    assert result_warnings([acc]) == ("tiny-llama accuracy: too few",)
    lp = rec(CELL, "logprob_parity", "pass", metrics={"max_abs_delta": 3.1e-7, "prompts": 12})
    assert figure(lp) == "max|Δ| 3.1e-7"
    assert dict(figures.facts("logprob_parity", lp.metrics, {}))["prompts"] == "12"
    wp = rec(CELL, "weight_parity", "pass", metrics={"tensors_compared": 21, "max_abs": 0.0, "coverage": 1.0,
                                                     "coverage_by_value": 1.0})
    assert figure(wp) == "21 tensors, max|Δ| 0"
    assert dict(figures.facts("weight_parity", wp.metrics, {}))["coverage"] == "100% (by value 100%)"
    assert figure(rec(CELL, "weights", "pass", metrics=wp.metrics)) == "21 tensors, max|Δ| 0"  # an alias
