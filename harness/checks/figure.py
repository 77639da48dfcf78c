"""What a check's result means to a person: its headline and labelled facts, drawn from its metrics.

Each check declares its own ``figure(metrics, details) -> Figure`` (the report asks the check registry
for it, never branching on a check's name); these are the values and the formatting they share.
``number(3.1e-07)`` is ``3.1e-7``, ``percent(0.905)`` is ``90.5%``, ``size(295936)`` is ``289 KiB``.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple, final

from harness.results import as_number

_EXPONENT = re.compile(r"e([+-])0*(\d)")


class Fact(NamedTuple):
    """One labelled figure of a result (a named tuple: thousands per report, cheap to build)."""

    label: str
    value: str


@final
@dataclasses.dataclass(frozen=True)
class Figure:
    """How a result reads: ``headline`` in the grid (empty: the report shows its first fact), the check's
    own ``facts`` first in the drill, and the metric and detail keys those facts ``shown`` already (the
    report lists every other scalar under its own, readable key)."""

    headline: str = ""
    facts: tuple[Fact, ...] = ()
    shown: frozenset[str] = frozenset()


GENERIC = Figure()  # a check that says nothing of its own: every scalar metric, readable


def number(value: Any) -> str:
    """``3.1e-07`` → ``3.1e-7``, ``0.5`` → ``0.5``, ``1.0`` → ``1``, ``12`` → ``12``, ``None`` → ``""``."""
    if value is None or isinstance(value, bool):
        return "" if value is None else ("yes" if value else "no")
    v = as_number(value)
    if v is None:
        return str(value)
    if isinstance(value, int) or (math.isfinite(v) and v == int(v) and abs(v) < 1e15):
        return str(int(v))
    if not math.isfinite(v):
        return str(v)
    text = f"{v:.3g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.2g}"
    return _EXPONENT.sub(r"e\1\2", text)


def percent(value: Any) -> str:
    """``1.0`` → ``100%``, ``0.905`` → ``90.5%``."""
    v = as_number(value)
    return "" if v is None else f"{v * 100:.3g}%"


def seconds(value: Any) -> str:
    """``4.23`` → ``4.2 s``, ``0.055`` → ``55 ms``, ``125`` → ``2 min 5 s``."""
    v = as_number(value)
    if v is None:
        return ""
    if v < 0.1:
        return f"{v * 1000:.0f} ms"
    if v < 60:
        return f"{v:.2g} s" if v < 1 else f"{v:.1f} s"
    return f"{int(v // 60)} min {v % 60:.0f} s"


def size(value: Any) -> str:
    """Bytes for people: ``295936`` → ``289 KiB``, ``None`` → ``""``."""
    v = as_number(value)
    if v is None:
        return ""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{int(v)} B"


def sampled(fraction: float) -> str:
    """``100%`` for full coverage, else ``sampled 4.2%`` (never rounded up to 100%)."""
    if fraction >= 1.0:
        return "100%"
    return f"sampled {min(float(percent(fraction)[:-1]), 99.9):.3g}%"


_REFERENCE_HOW = {"cache": "read from the reference store", "computed": "booted by this check",
                  "self": "this cell's own answers", "golden": ""}


def reference(m: Mapping[str, Any]) -> str:
    """Which reference cell a comparison used and where its answers came from:
    ``hf-cpu-m-none, golden imported from gpu-7 (harness 0.9.0, 2026-01-05)``,
    ``hf-cpu-m-none, computed here on hf-cpu float32 · read from the reference store``."""
    which = ", ".join(str(m[k]) for k in ("reference_cell", "reference_origin") if m.get(k))
    source = str(m.get("reference_source") or "")
    how = _REFERENCE_HOW.get(source, f"from {source}" if source else "")
    if source == "computed" and as_number(m.get("reference_s")):
        how += f" in {seconds(m['reference_s'])}"
    return " · ".join(p for p in (which, how) if p)
