"""Figures for people: a result's metrics and details as short labelled values, never ``key value`` dumps.

``facts(rec)`` returns ``Fact(label, value)`` pairs with empty values left out, e.g. for accuracy
``("correct", "12/12 (100%)"), ("needs", "≥ 90%")``; for weight parity ``("max |Δ|", "3.1e-7")``.
Known checks get their own wording; any other scalar metric keeps its key made readable
(``token_agreement`` → ``token agreement``) with its value formatted.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from harness.reports.drift import as_number

_EXPONENT = re.compile(r"e([+-])0*(\d)")
_HIDDEN = frozenset({"reference_key"})  # internal cache keys: nothing a person can act on


class Fact(NamedTuple):
    """One labelled figure of a result (a named tuple: thousands per report, cheap to build)."""

    label: str
    value: str


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


def facts(check: str, metrics: Mapping[str, Any], details: Mapping[str, Any]) -> tuple[Fact, ...]:
    """The figures of one result: the check's own wording first, then every other scalar, readable."""
    own, used = _BY_CHECK.get(check, _none)(metrics, details)
    rest = [Fact(_label(k), number(v)) for k, v in metrics.items()
            if k not in used and k not in _HIDDEN and "." not in k and _scalar(v)]
    rest += [Fact(_label(k), number(v)) for k, v in details.items() if k not in used and _scalar(v)]
    return tuple(f for f in (*own, *rest) if f.value)


def _accuracy(m: Mapping[str, Any], d: Mapping[str, Any]) -> tuple[list[Fact], set[str]]:
    out = []
    if "correct" in m and "total" in m:
        rate = f" ({percent(m['pass_rate'])})" if "pass_rate" in m else ""
        out.append(Fact("correct", f"{number(m['correct'])}/{number(m['total'])}{rate}"))
    if as_number(m.get("stderr")):
        out.append(Fact("std. error", f"± {percent(m['stderr'])}"))
    if "threshold" in m:
        out.append(Fact("needs", f"≥ {percent(m['threshold'])}"))
    sets = sorted({k.split(".", 1)[0] for k in m if "." in k})
    if len(sets) > 1:
        out += [Fact(f"set {s}", f"{number(m.get(f'{s}.correct'))}/{number(m.get(f'{s}.total'))}"
                                 f" (needs {percent(m.get(f'{s}.threshold'))})") for s in sets]
    return out + _paired(m), {"correct", "total", "pass_rate", "stderr", "threshold", *PAIRED_KEYS}


PAIRED_KEYS = ("reference_correct", "paired_lost", "paired_gained", "paired_p_drop", "paired_p_two_sided", "paired_alpha",
               "reference_cell", "reference_source", "reference_origin", "min_detectable_drop", "power_target",
               "assumed_discordance", "prompts_needed", "power_at_prompts", "power_warning", "paired_unavailable")


def _paired(m: Mapping[str, Any]) -> list[Fact]:
    """The accuracy check's comparison with its reference cell and the card's power plan."""
    out = []
    if "paired_lost" in m:
        out.append(Fact("vs reference", f"{number(m['paired_lost'])} lost, {number(m.get('paired_gained'))} gained · "
                                        f"exact McNemar p(drop) {number(m.get('paired_p_drop'))} "
                                        f"(α {number(m.get('paired_alpha'))}; two-sided p {number(m.get('paired_p_two_sided'))})"))
        out.append(Fact("reference answers", f"{number(m.get('reference_correct'))}/{number(m.get('total'))} right · "
                                             f"{_reference(m)}"))
    if m.get("paired_unavailable"):
        out.append(Fact("vs reference", f"not compared: {m['paired_unavailable']}"))
    if "prompts_needed" in m:
        out.append(Fact("detectable drop", f"{number(m.get('min_detectable_drop'))} needs ≥ {number(m['prompts_needed'])} "
                                           f"prompts for power {percent(m.get('power_target'))}; power with "
                                           f"{number(m.get('total'))}: {percent(m.get('power_at_prompts'))}"))
    if m.get("power_warning"):
        out.append(Fact("warning", str(m["power_warning"])))
    return out


def _weight_parity(m: Mapping[str, Any], d: Mapping[str, Any]) -> tuple[list[Fact], set[str]]:
    compared, failed = m.get("tensors_compared"), m.get("tensors_failed")
    by_digest, differ = m.get("tensors_by_digest"), m.get("tensors_digest_differs")
    out = [Fact("by value", f"{number(compared)} tensors" + (f", {number(failed)} out of tolerance" if failed else "")
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
           Fact("coverage", coverage(m))]
    used = {"coverage", "coverage_by_value", "coverage_by_digest", "coverage_not_verified", "elements",
            "elements_by_value", "elements_by_digest", "not_verified_why", "tensors_compared", "tensors_failed", "tensors_by_digest", "tensors_digest_differs", "max_abs", "max_rel",
            "min_cosine", "atol", "rtol", "dtype", "tensors_unavailable", "nonzero_padding", "worst_tensor"}
    return out, used


def coverage(m: Mapping[str, Any]) -> str:
    """``100% (by value 55%, by digest 45%)``, ``sampled 4.2% (by value 4.2%; not verified 95.8%: why)``."""
    whole = as_number(m.get("coverage"))
    if whole is None:
        return ""
    ways = ", ".join(f"by {w} {percent(m[f'coverage_by_{w}'])}" for w in ("value", "digest") if as_number(m.get(f"coverage_by_{w}")))
    missing = as_number(m.get("coverage_not_verified")) or 0.0
    gap = f"; not verified {percent(missing)}: {m.get('not_verified_why')}" if missing else ""
    return f"{sampled(whole)} ({ways or 'nothing verified'}{gap})"


def sampled(fraction: float) -> str:
    """``100%`` for full coverage, else ``sampled 4.2%`` (never rounded up to 100%)."""
    if fraction >= 1.0:
        return "100%"
    return f"sampled {min(float(percent(fraction)[:-1]), 99.9):.3g}%"


def _tolerance(m: Mapping[str, Any]) -> str:
    parts = [f"{k} {number(m[k])}" for k in ("atol", "rtol") if m.get(k) is not None]
    return " · ".join(parts) + (f" ({m['dtype']})" if parts and m.get("dtype") else "")


def _logprob_parity(m: Mapping[str, Any], d: Mapping[str, Any]) -> tuple[list[Fact], set[str]]:
    def limited(value: str, key: str, word: str = "limit") -> str:
        return f"{value} ({word} {number(m[key]) if word == 'limit' else percent(m[key])})" if value and key in m else value

    diverged = m.get("prompts_diverged")
    out = [Fact("prompts", f"{number(m.get('prompts'))}" + (f", {number(diverged)} diverged" if diverged else "")
                if m.get("prompts") is not None else ""),
           Fact("tokens agree", limited(percent(m.get("token_agreement")), "limit_min_token_agreement", "needs")),
           Fact("max |Δ logprob|", limited(number(m.get("max_abs_delta")), "limit_max_abs_delta")),
           Fact("top-k max |Δ|", limited(number(m.get("max_topk_delta")), "limit_max_topk_delta")),
           Fact("min top-k overlap", limited(percent(m.get("min_topk_overlap")), "limit_min_topk_overlap", "needs")),
           Fact("near ties", number(m.get("near_ties")) if m.get("near_ties") else ""),
           Fact("reference", _reference(m)),
           Fact("reference file", str(d.get("reference_path") or "")),
           Fact("first divergent layer", str(m.get("layer_divergence") or ""))]  # harness/checks/layer_divergence.py
    used = {"prompts", "prompts_diverged", "token_agreement", "max_abs_delta", "max_topk_delta", "min_topk_overlap",
            "near_ties", "reference_source", "reference_s", "reference_cell", "reference_origin", "dtype",
            "reference_path", *(k for k in m if k.startswith(("limit_", "layer_")))}
    return out, used


def _reference(m: Mapping[str, Any]) -> str:
    """Which cell and where it came from: ``hf-cpu-m-none, golden imported from gpu-7 (harness 0.9.0, 2026-01-05)``,
    ``hf-cpu-m-none, computed here on hf-cpu float32 · read from the reference store``."""
    which = ", ".join(str(m[k]) for k in ("reference_cell", "reference_origin") if m.get(k))
    source = str(m.get("reference_source") or "")
    how = _REFERENCE_HOW.get(source, f"from {source}" if source else "")
    if source == "computed" and as_number(m.get("reference_s")):
        how += f" in {seconds(m['reference_s'])}"
    return " · ".join(p for p in (which, how) if p)


_REFERENCE_HOW = {"cache": "read from the reference store", "computed": "booted by this check",
                  "self": "this cell's own answers", "golden": ""}


def _mode_active(m: Mapping[str, Any], d: Mapping[str, Any]) -> tuple[list[Fact], set[str]]:
    """Where the weights are against the no-offload cell: ``offloaded  289 KiB (disk 289 KiB; 18 of 21 parameters)``."""
    stores = "; ".join(f"{k[len('offloaded_to_'):-len('_bytes')]} {size(v)}" for k, v in m.items()
                       if k.startswith("offloaded_to_") and as_number(v))
    moved = f"{number(m.get('offloaded_params'))} of {number(m.get('params'))} parameters" if m.get("params") else ""
    base = f"no-offload cell {m['baseline_cell']}: {size(m.get('baseline_resident_bytes'))}" if m.get("baseline_cell") else ""
    memory = " · ".join(f"{k[len('process_'):-len('_bytes')].replace('_', ' ')} {size(v)}" for k, v in m.items()
                        if k.startswith("process_") and k.endswith("_bytes"))
    out = [Fact("asked", " · ".join(str(m[k]) for k in ("asked_offload", "asked_dtype") if m.get(k))),
           Fact("offloaded", f"{size(m.get('offloaded_bytes'))} ({'; '.join(p for p in (stores, moved) if p)})"
                if m.get("offloaded_bytes") is not None else ""),
           Fact("resident", f"{size(m.get('resident_bytes'))}" + (f" ({base})" if base else "")
                if m.get("resident_bytes") is not None else ""),
           Fact("computes in", " · ".join(str(m[k]) for k in ("runtime_dtypes", "attention_backend") if m.get(k))),
           Fact("process memory", memory)]
    used = {k for k in m if k.startswith(("offloaded_", "process_", "baseline_", "asked_"))}
    return out, used | {"offloaded_bytes", "resident_bytes", "params", "offloaded_params", "runtime_dtypes", "attention_backend"}


def size(value: Any) -> str:
    """Bytes for people: ``295936`` → ``289 KiB``, ``None`` → ``""``."""
    v = as_number(value)
    if v is None:
        return ""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{int(v)} B"


def _none(m: Mapping[str, Any], d: Mapping[str, Any]) -> tuple[list[Fact], set[str]]:
    return [], set()


_BY_CHECK: Mapping[str, Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[list[Fact], set[str]]]] = {
    "accuracy": _accuracy, "weight_parity": _weight_parity, "logprob_parity": _logprob_parity,
    "mode_active": _mode_active}


def _label(key: str) -> str:
    return key.replace("_", " ").replace(".", " · ")


def _scalar(value: Any) -> bool:
    return not isinstance(value, (Mapping, list, tuple)) and value not in (None, "")
