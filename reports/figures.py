"""Figures for people: a result's metrics and details as short labelled values, never ``key value`` dumps.

Each check says what its results mean (``figure(metrics, details)``, harness/checks/figure.py): its
grid headline, its own facts, the keys they show. ``facts("accuracy", m, d)`` asks the check registry
for that check and returns ``Fact(label, value)`` pairs with empty values left out, e.g.
``("correct", "12/12 (100%)"), ("needs", "≥ 90%")``; any other scalar metric keeps its key made
readable (``token_agreement`` → ``token agreement``) with its value formatted. A check that is not
registered here (an old run's, a third party's not installed) reads generically: every scalar.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.checks import CHECKS, Check
from harness.checks.figure import GENERIC, Fact, Figure, number, percent, sampled, seconds, size
from harness.checks.weight_figure import coverage

__all__ = ["Fact", "Figure", "check_of", "coverage", "facts", "figure_of", "headline", "number", "percent", "sampled",
           "seconds", "size", "warning_of"]

_HIDDEN = frozenset({"reference_key"})  # internal cache keys: nothing a person can act on


def check_of(name: str) -> Check | None:
    """The registered check a record names, or None (not registered in this install)."""
    return CHECKS.get(name) if name in CHECKS else None


def figure_of(check: str, metrics: Mapping[str, Any], details: Mapping[str, Any]) -> Figure:
    """What the check says its result means; the generic figure for a check not registered here."""
    found = check_of(check)
    say = getattr(found, "figure", None)
    return say(metrics, details) if say is not None else GENERIC


def warning_of(check: str, metrics: Mapping[str, Any]) -> str | None:
    """The caution the check raises about a result (e.g. accuracy's too-few-prompts power warning), or None."""
    say = getattr(check_of(check), "warning", None)
    return say(metrics) if say is not None else None


def facts(check: str, metrics: Mapping[str, Any], details: Mapping[str, Any]) -> tuple[Fact, ...]:
    """The figures of one result: the check's own wording first, then every other scalar, readable."""
    return _facts(figure_of(check, metrics, details), metrics, details)


def headline(check: str, metrics: Mapping[str, Any]) -> str:
    """The grid's short text of a result: the check's headline, else its first fact, else ``""``."""
    fig = figure_of(check, metrics, {})
    if fig.headline:
        return fig.headline
    first = next(iter(_facts(fig, metrics, {})), None)
    return f"{first.label} {first.value}" if first else ""


def _facts(fig: Figure, metrics: Mapping[str, Any], details: Mapping[str, Any]) -> tuple[Fact, ...]:
    rest = [Fact(_label(k), number(v)) for k, v in metrics.items()
            if k not in fig.shown and k not in _HIDDEN and "." not in k and _scalar(v)]
    rest += [Fact(_label(k), number(v)) for k, v in details.items() if k not in fig.shown and _scalar(v)]
    return tuple(f for f in (*fig.facts, *rest) if f.value)


def _label(key: str) -> str:
    return key.replace("_", " ").replace(".", " · ")


def _scalar(value: Any) -> bool:
    return not isinstance(value, (Mapping, list, tuple)) and value not in (None, "")
