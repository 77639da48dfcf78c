"""Mode active: the cell's runtime really is in the mode the cell asked for, with the evidence.

A runtime that accepts an offload flag and silently keeps every weight in device memory passes
every other check (its answers are right); this check fails it. From the runtime's own report
(harness/checks/modeevidence.py) it compares, with the same model's no-offload cell:

- offload: an offload cell must hold weights outside the device (``offloaded`` bytes > 0, in the
  store the mode names: host memory for ``cpu``, files for ``disk``) and fewer weight bytes
  resident than the no-offload cell of this run (else the whole checkpoint, which is what a
  no-offload cell holds); a no-offload cell must offload nothing;
- dtype: the runtime computes in the cell's dtype;
- attention backend: the one a ``--attention-backend`` argument asked for, when one was.

Where the runtime exposes no placement or weight memory the offload cannot be proven: the result
is N/A with that reason, never a pass. Process memory is recorded as evidence, not judged: on the
tiny zoo the weights are a few hundred KiB of a ~350 MiB process.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.checks.base import CheckContext, CheckResult
from harness.checks.figure import Fact, Figure, as_number, number, size
from harness.checks.meaning import CheckDefaults
from harness.checks.modeevidence import ModeEvidence, read_evidence
from harness.config.matrix import Cell
from harness.results import read_results

STORES = {"cpu": "cpu", "disk": "disk"}  # offload modes whose store the evidence names


class ModeActiveCheck(CheckDefaults):
    name = "mode_active"
    key_metric = "offloaded_bytes"

    def figure(self, metrics: Mapping[str, Any], details: Mapping[str, Any]) -> Figure:
        return mode_figure(metrics)

    def run(self, ctx: CheckContext) -> CheckResult:
        if ctx.options is not None and ctx.cell.device in ctx.options.simulate and ctx.cell.offload == "cpu":
            return CheckResult("na", f"a simulated {ctx.cell.device} cell runs on the CPU, where cpu offload has "
                                     "nowhere to move the weights: the mode cannot be shown active", {}, {})
        mode_info = getattr(ctx.client, "mode_info", None)
        info = mode_info() if mode_info is not None else ctx.client.server_info()
        ev = read_evidence(ctx.cell.runtime, info)
        baseline = no_offload_baseline(ctx)
        problems = [*dtype_problems(ctx.cell, ev), *backend_problems(asked_backend(ctx), ev),
                    *offload_problems(ctx.cell, ev, baseline)]
        metrics = _metrics(ctx.cell, ev, baseline)
        details = {"evidence": dict(ev.figures)}
        if problems:
            return CheckResult("fail", "mode-inactive: " + " | ".join(problems), metrics, details)
        unproven = unproven_offload(ctx.cell, ev, baseline)
        if unproven:
            return CheckResult("na", unproven, metrics, details)
        return CheckResult("pass", _summary(ctx.cell, ev, baseline), metrics, details)


def no_offload_baseline(ctx: CheckContext) -> Mapping[str, Any] | None:
    """This run's passing mode_active result of the same runtime, device, model and dtype without offload."""
    if ctx.options is None or ctx.cell.offload == "none":
        return None
    want = (ctx.cell.runtime, ctx.cell.device, ctx.cell.model, ctx.cell.dtype, ctx.cell.tp)
    for r in reversed(read_results(ctx.options.out_dir / "results.jsonl").records):
        if (r.check == "mode_active" and r.offload == "none" and r.status == "pass"
                and (r.runtime, r.device, r.model, r.dtype, r.tp) == want):
            return {"cell": r.cell, **dict(r.metrics)}
    return None


def asked_backend(ctx: CheckContext) -> str | None:
    """The attention backend the run's ``--attention-backend`` argument for this runtime names, or None."""
    args = list(ctx.options.runtime_options(ctx.cell.runtime).args) if ctx.options is not None else []
    for i, arg in enumerate(args):
        if arg == "--attention-backend" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--attention-backend="):
            return arg.split("=", 1)[1]
    return None


def dtype_problems(cell: Cell, ev: ModeEvidence) -> list[str]:
    if not ev.dtypes or cell.dtype in ev.dtypes:
        return []
    return [f"dtype: the cell asked {cell.dtype}, the runtime computes in {', '.join(ev.dtypes)}"]


def backend_problems(asked: str | None, ev: ModeEvidence) -> list[str]:
    if asked is None or ev.attention_backend is None or str(ev.attention_backend).lower() == asked.lower():
        return []
    return [f"attention backend: --attention-backend {asked} asked, the runtime reports {ev.attention_backend}"]


def offload_problems(cell: Cell, ev: ModeEvidence, baseline: Mapping[str, Any] | None) -> list[str]:
    """What the evidence says against the cell's offload mode (nothing when it cannot tell)."""
    moved, resident = ev.offloaded_bytes, ev.resident_bytes
    if cell.offload == "none":
        return [f"offload: none asked, but {_kib(moved)} of weights are offloaded ({_stores(ev)})"] if moved else []
    if moved is not None and resident is not None:
        store = STORES.get(cell.offload)
        if not moved or (store is not None and not (ev.offloaded_to or {}).get(store)):
            where = f"to {store}" if store else "anywhere"
            return [f"offload: {cell.offload} asked, but no weights are offloaded {where} "
                    f"({ev.offloaded_params or 0} of {ev.params} parameters; offloaded: {_stores(ev)}); "
                    f"{_kib(resident)} resident, {_versus(resident, ev, baseline)}"]
    limit = _baseline_resident(ev, baseline)
    if resident is not None and limit is not None and limit >= 2 * ev.resolution_bytes and resident >= limit:
        return [f"offload: {cell.offload} asked, but {_kib(resident)} of weights are resident, "
                f"{_versus(resident, ev, baseline)}"]
    return []


def unproven_offload(cell: Cell, ev: ModeEvidence, baseline: Mapping[str, Any] | None) -> str | None:
    """Why an offload cell's offload cannot be proven from what its runtime exposes, or None."""
    if cell.offload == "none" or ev.offloaded_bytes is not None:
        return None
    if ev.resident_bytes is None:
        return (f"offload {cell.offload} not proven: the {cell.runtime} runtime reports neither where its weights "
                "live nor their memory")
    limit = _baseline_resident(ev, baseline)
    if limit is None:
        return (f"offload {cell.offload} not proven: {cell.runtime} reports {_resident(ev)} of weight memory, "
                "but this run has no passing no-offload cell of the model to compare it with")
    if limit < 2 * ev.resolution_bytes:
        return (f"offload {cell.offload} not proven: the no-offload cell holds {_kib(limit)} of weights, too little "
                f"for {cell.runtime}'s weight memory figure (steps of {_kib(ev.resolution_bytes)}) to show a saving")
    return None


def _baseline_resident(ev: ModeEvidence, baseline: Mapping[str, Any] | None) -> int | None:
    """Weight bytes a no-offload cell holds: measured in this run, else the whole model the evidence counts."""
    if baseline is not None and baseline.get("resident_bytes") is not None:
        return int(baseline["resident_bytes"])
    if ev.resident_bytes is not None and ev.offloaded_bytes is not None:
        return ev.resident_bytes + ev.offloaded_bytes
    return None


def _versus(resident: int, ev: ModeEvidence, baseline: Mapping[str, Any] | None) -> str:
    limit = _baseline_resident(ev, baseline)
    if baseline is not None and baseline.get("resident_bytes") is not None:
        return f"as much as the no-offload cell {baseline['cell']} ({_kib(limit)})"
    return f"the whole model ({_kib(limit)}), as a no-offload cell holds it" if limit is not None else "no baseline"


def _metrics(cell: Cell, ev: ModeEvidence, baseline: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"asked_offload": cell.offload, "asked_dtype": cell.dtype,
                           "resident_bytes": ev.resident_bytes, "offloaded_bytes": ev.offloaded_bytes,
                           "runtime_dtypes": ", ".join(ev.dtypes) or None, "attention_backend": ev.attention_backend,
                           "params": ev.params, "offloaded_params": ev.offloaded_params}
    for store, held in (ev.offloaded_to or {}).items():
        out[f"offloaded_to_{store}_bytes"] = held
    held_memory = ev.figures.get("memory")
    memory: Mapping[str, Any] = held_memory if isinstance(held_memory, Mapping) else {}
    out.update({f"process_{k}_bytes": v for k, v in memory.items()})
    if baseline is not None:
        out.update(baseline_cell=baseline.get("cell"), baseline_resident_bytes=baseline.get("resident_bytes"),
                   baseline_process_rss_bytes=baseline.get("process_rss_bytes"))
    return {k: v for k, v in out.items() if v is not None}


def mode_figure(m: Mapping[str, Any]) -> Figure:
    """``289 KiB offloaded`` in the grid; where the weights are against the no-offload cell:
    ``offloaded  289 KiB (disk 289 KiB; 18 of 21 parameters)``."""
    stores = "; ".join(f"{k[len('offloaded_to_'):-len('_bytes')]} {size(v)}" for k, v in m.items()
                       if k.startswith("offloaded_to_") and as_number(v))
    moved = f"{number(m.get('offloaded_params'))} of {number(m.get('params'))} parameters" if m.get("params") else ""
    base = f"no-offload cell {m['baseline_cell']}: {size(m.get('baseline_resident_bytes'))}" if m.get("baseline_cell") else ""
    memory = " · ".join(f"{k[len('process_'):-len('_bytes')].replace('_', ' ')} {size(v)}" for k, v in m.items()
                        if k.startswith("process_") and k.endswith("_bytes"))
    out = (Fact("asked", " · ".join(str(m[k]) for k in ("asked_offload", "asked_dtype") if m.get(k))),
           Fact("offloaded", f"{size(m.get('offloaded_bytes'))} ({'; '.join(p for p in (stores, moved) if p)})"
                if m.get("offloaded_bytes") is not None else ""),
           Fact("resident", f"{size(m.get('resident_bytes'))}" + (f" ({base})" if base else "")
                if m.get("resident_bytes") is not None else ""),
           Fact("computes in", " · ".join(str(m[k]) for k in ("runtime_dtypes", "attention_backend") if m.get(k))),
           Fact("process memory", memory))
    shown = {k for k in m if k.startswith(("offloaded_", "process_", "baseline_", "asked_"))}
    shown |= {"offloaded_bytes", "resident_bytes", "params", "offloaded_params", "runtime_dtypes", "attention_backend"}
    headline = f"{size(m['offloaded_bytes']) or '0 B'} offloaded" if m.get("offloaded_bytes") is not None else ""
    return Figure(headline, out, frozenset(shown))


def _summary(cell: Cell, ev: ModeEvidence, baseline: Mapping[str, Any] | None) -> str:
    dtype = f"{', '.join(ev.dtypes) or cell.dtype} weights"
    attention = f", attention {ev.attention_backend}" if ev.attention_backend else ""
    if cell.offload == "none":
        return f"no offload: {_resident(ev)} of {dtype} resident{attention}"
    return (f"offload {cell.offload} active: {_kib(ev.offloaded_bytes)} offloaded ({_stores(ev)}), "
            f"{_kib(ev.resident_bytes)} resident vs {_kib(_baseline_resident(ev, baseline))} without offload; {dtype}{attention}")


def _resident(ev: ModeEvidence) -> str:
    """``481.2 KiB``; ``under 1.0 MiB`` below the figure's step; ``an unreported amount`` when not given."""
    if ev.resident_bytes is None:
        return "an unreported amount"
    if ev.resident_bytes < ev.resolution_bytes:
        return f"under {_kib(ev.resolution_bytes)}"
    return _kib(ev.resident_bytes)


def _stores(ev: ModeEvidence) -> str:
    return ", ".join(f"{k} {_kib(v)}" for k, v in (ev.offloaded_to or {}).items()) or "nothing"


def _kib(size: int | None) -> str:
    if size is None:
        return "unknown"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


CHECK = ModeActiveCheck()
