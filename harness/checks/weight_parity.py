"""Weight parity: every checkpoint tensor against what the live runtime holds, layouts undone.

Tensors the runtime returns by value are compared within the dtype's tolerance; those it does
not return are compared by digest where the runtime offers one (harness.checks.weight_digest).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from harness.cards import ModelCard, Tolerance
from harness.checkpoint import Checkpoint
from harness.checks.base import CheckContext, CheckResult
from harness.checks.weight_digest import DigestParity, compare_digests, why_not
from harness.client import weight_digests
from harness.layout import CutContext, Layout, LayoutUnavailable, Recovered, recover
from harness.matrix import Cell
from harness.parity import TensorParity, compare, worst_first

WORST_LISTED = 10
Fetch = Callable[[str], "np.ndarray | None"]


@dataclasses.dataclass(frozen=True)
class _Unavailable:
    name: str
    why: str


class WeightParityCheck:
    name = "weight_parity"
    key_metric = "max_abs"

    def na_reason(self, cell: Cell, card: ModelCard) -> str | None:
        if cell.offload == "meta":
            return "meta offload keeps no real weights by design: nothing to compare"
        return None

    def run(self, ctx: CheckContext) -> CheckResult:
        ckpt = Checkpoint(ctx.checkpoint)
        layout = Layout.load(ctx.weight_layout)
        tol = ctx.card.tolerance(ctx.cell.dtype)
        rows = ctx.card.truncate_rows
        fetch: Fetch = lru_cache(maxsize=8)(lambda name: ctx.client.weight(name, rows))
        cut = CutContext(shape_of=ckpt.shape, tp=ctx.cell.tp, truncated_rows=rows)
        results: list[TensorParity] = []
        unavailable: list[_Unavailable] = []
        for name in ckpt.names():
            outcome = _compare_one(ckpt, layout, fetch, cut, name, tol, ctx.card.architecture)
            (results if isinstance(outcome, TensorParity) else unavailable).append(outcome)
        digests: list[DigestParity] = []
        if unavailable:
            digests, unavailable = _by_digest(ctx, ckpt, layout, unavailable)
        return _verdict(results, unavailable, tol, ctx.cell.dtype, ctx.weight_layout, digests)


def _by_digest(ctx: CheckContext, ckpt: Checkpoint, layout: Layout, unavailable: list[_Unavailable]
               ) -> tuple[list[DigestParity], list[_Unavailable]]:
    """Compare by digest what was not readable by value, when the runtime offers digests."""
    blocked = why_not(ctx.cell.device, ctx.cell.tp)
    if blocked:  # without asking: the runtime would hash the whole model for nothing
        if getattr(ctx.client, "weight_digests", None) is None:
            return [], unavailable
        return [], [_Unavailable(u.name, f"{u.why}; {blocked}") for u in unavailable]
    ranks = weight_digests(ctx.client)
    if ranks is None:
        return [], unavailable
    digests, left = compare_digests(ckpt, layout, [u.name for u in unavailable], ctx.card.architecture, ranks,
                                    ctx.cell.dtype)
    covered = {n for d in digests for n in d.members}
    still = [_Unavailable(u.name, left.get(u.name, u.why)) for u in unavailable if u.name not in covered]
    return digests, still


def _compare_one(ckpt: Checkpoint, layout: Layout, fetch: Fetch, cut: CutContext, name: str, tol: Tolerance,
                 architecture: str) -> TensorParity | _Unavailable:
    """One checkpoint tensor: find it in the runtime, undo the layout, compare what it holds."""
    why = "not exposed by the runtime"
    for mapped in layout.candidates(name, architecture):
        raw = fetch(mapped.runtime_name)
        if raw is None:
            continue
        try:
            got = recover(raw, mapped, name, cut)
        except LayoutUnavailable as exc:
            why = str(exc)
            continue
        return _compare_recovered(ckpt, name, mapped.runtime_name, got, tol)
    return _Unavailable(name, why)


def _compare_recovered(ckpt: Checkpoint, name: str, runtime_name: str, got: Recovered, tol: Tolerance) -> TensorParity:
    rows = got.region[0].stop if got.region else None
    want = ckpt.read(name, rows)[got.region] if got.region else ckpt.read(name)
    where = [f"via {runtime_name}"] if runtime_name != name else []
    if got.partial:
        shown = ", ".join(f"{s.start}:{s.stop}" if s != slice(None) else ":" for s in got.region)
        where.append(f"compared [{shown}] of {list(ckpt.shape(name))} (tp shard / truncate_rows)")
    if got.padding_note:
        where.append(got.padding_note)
    return compare(name, got.tensor, want, tol, padding_max_abs=got.padding_max_abs, note="; ".join(where))


def _verdict(results: list[TensorParity], unavailable: list[_Unavailable], tol: Tolerance, dtype: str,
             layout: str, digests: list[DigestParity] | None = None) -> CheckResult:
    digests = digests or []
    ranked = worst_first(results)
    failed = [r for r in results if not r.ok]
    differ = [d for d in digests if not d.ok]
    padded = [r for r in results if r.padding_max_abs > 0]
    metrics = {
        "tensors_compared": len(results), "tensors_failed": len(failed), "tensors_unavailable": len(unavailable),
        "max_abs": max((r.max_abs for r in results), default=None),
        "max_rel": max((r.max_rel for r in results), default=None),
        "max_tol_ratio": max((r.tol_ratio for r in results), default=None),
        "min_cosine": min((r.cosine for r in results), default=None),
        "nonzero_padding": len(padded),
        "dtype": dtype, "atol": tol.atol, "rtol": tol.rtol, "layout": layout,
        "worst_tensor": ranked[0].name if failed else (differ[0].runtime_name if differ else None),
        "tensors_by_digest": sum(len(d.members) for d in digests),
        "tensors_digest_differs": sum(len(d.members) for d in differ),
    }
    details = {"worst": [r.as_dict() for r in ranked[:WORST_LISTED]],
               "unavailable": [u.name for u in unavailable[:50]],
               "unavailable_reasons": [dataclasses.asdict(u) for u in unavailable[:50]],
               "digests": [d.as_dict() for d in sorted(digests, key=lambda d: d.ok)[:50]]}
    if not results and not digests:
        return CheckResult("na", "the runtime exposes none of the checkpoint's tensors", metrics, details)
    if differ:
        names = ", ".join(f"{d.runtime_name} (from {len(d.members)} checkpoint tensors)" for d in differ[:5])
        values = f"; by value: {len(failed)}/{len(results)} outside tolerance" if results else ""
        return CheckResult("fail", f"parity: {len(differ)}/{len(digests)} runtime tensors differ from the checkpoint "
                                   f"by digest (sha256 via /weights_checker; no values to size the error): "
                                   f"{names}{values}", metrics, details)
    if failed:
        top = ranked[0]
        reason = (f"parity: {len(failed)}/{len(results)} tensors outside {dtype} tolerance atol={tol.atol:g} "
                  f"rtol={tol.rtol:g}; worst {top.name}: max_abs={top.max_abs:.3g} max_rel={top.max_rel:.3g} "
                  f"cosine={top.cosine:.6f} frac_outside={top.frac_outside:.3g} {top.note}".rstrip())
        return CheckResult("fail", reason, metrics, details)
    parts = [f"{len(results)} tensors within {dtype} tolerance atol={tol.atol:g} rtol={tol.rtol:g}"] if results else []
    if digests:
        parts.append(f"{metrics['tensors_by_digest']} byte-identical by digest ({len(digests)} runtime tensors, "
                     f"sha256 via /weights_checker{'' if results else '; the runtime returns no values'})")
    if unavailable:
        parts.append(f"{len(unavailable)} not exposed by the runtime")
    return CheckResult("pass", "; ".join(parts), metrics, details)


CHECK = WeightParityCheck()
