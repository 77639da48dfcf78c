"""How a weight parity result reads: ``21 tensors, max|Δ| 0`` in the grid, ``sampled 4.2% · ...`` when
``truncate_rows`` made it a sample; by value, by digest, the tolerance and the coverage in the drill."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.checks.figure import Fact, Figure, as_number, number, percent, sampled

_SHOWN = frozenset({
    "coverage", "coverage_by_value", "coverage_by_digest", "coverage_not_verified", "elements", "elements_by_value",
    "elements_by_digest", "not_verified_why", "tensors_compared", "tensors_failed", "tensors_by_digest",
    "tensors_digest_differs", "max_abs", "max_rel", "min_cosine", "atol", "rtol", "dtype", "tensors_unavailable",
    "nonzero_padding", "worst_tensor"})


def weight_figure(m: Mapping[str, Any]) -> Figure:
    """The grid's headline and the drill's facts of one weight parity result."""
    compared, failed = m.get("tensors_compared"), m.get("tensors_failed")
    by_digest, differ = m.get("tensors_by_digest"), m.get("tensors_digest_differs")
    out = (Fact("by value", f"{number(compared)} tensors" + (f", {number(failed)} out of tolerance" if failed else "")
                if compared else ""),
           Fact("by digest", f"{number(by_digest)} tensors" + (f", {number(differ)} differ" if differ else "")
                if by_digest else ""),
           Fact("max |Δ|", number(m.get("max_abs")) if compared else ""),
           Fact("max rel. error", number(m.get("max_rel")) if compared else ""),
           Fact("min cosine", f"{as_number(m['min_cosine']):.7f}" if as_number(m.get("min_cosine")) is not None else ""),
           Fact("tolerance", _tolerance(m)),
           Fact("not exposed", f"{number(m.get('tensors_unavailable'))} tensors" if m.get("tensors_unavailable") else ""),
           Fact("nonzero padding", number(m.get("nonzero_padding")) if m.get("nonzero_padding") else ""),
           Fact("worst tensor", str(m.get("worst_tensor") or "")),
           Fact("coverage", coverage(m)))
    return Figure(headline(m), out, _SHOWN)


def headline(m: Mapping[str, Any]) -> str:
    """``21 tensors, max|Δ| 0``, ``45 by digest, 1 differ``, ``sampled 4.2% · 21 tensors, max|Δ| 0``."""
    if "tensors_compared" not in m:
        return ""
    by_value = f"{m['tensors_compared']} tensors, max|Δ| {number(m.get('max_abs'))}" if m["tensors_compared"] else ""
    differ = m.get("tensors_digest_differs") or 0
    by_digest = (f"{m['tensors_by_digest']} by digest" + (f", {differ} differ" if differ else "")
                 if m.get("tensors_by_digest") else "")
    shown = " + ".join(x for x in (by_value, by_digest) if x) or "0 tensors"
    covered = as_number(m.get("coverage"))
    return shown if covered is None or covered >= 1.0 else f"{sampled(covered)} · {shown}"


def coverage(m: Mapping[str, Any]) -> str:
    """``100% (by value 55%, by digest 45%)``, ``sampled 4.2% (by value 4.2%; not verified 95.8%: why)``."""
    whole = as_number(m.get("coverage"))
    if whole is None:
        return ""
    ways = ", ".join(f"by {w} {percent(m[f'coverage_by_{w}'])}" for w in ("value", "digest") if as_number(m.get(f"coverage_by_{w}")))
    missing = as_number(m.get("coverage_not_verified")) or 0.0
    gap = f"; not verified {percent(missing)}: {m.get('not_verified_why')}" if missing else ""
    return f"{sampled(whole)} ({ways or 'nothing verified'}{gap})"


def _tolerance(m: Mapping[str, Any]) -> str:
    parts = [f"{k} {number(m[k])}" for k in ("atol", "rtol") if m.get(k) is not None]
    return " · ".join(parts) + (f" ({m['dtype']})" if parts and m.get("dtype") else "")
