"""Weight parity: every checkpoint tensor against what the live runtime holds, layouts undone."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from harness.cards import ModelCard
from harness.checkpoint import Checkpoint
from harness.checks.base import CheckContext, CheckResult
from harness.layout import Layout, apply_ops
from harness.matrix import Cell
from harness.parity import TensorParity, compare, worst_first

WORST_LISTED = 10


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
        fetch = lru_cache(maxsize=8)(lambda name: ctx.client.weight(name, rows))
        results: list[TensorParity] = []
        unavailable: list[str] = []
        for name in ckpt.names():
            want = ckpt.read(name, rows)
            got = _runtime_tensor(layout, fetch, name, want.shape)
            if got is None:
                unavailable.append(name)
            else:
                results.append(compare(name, got, want, tol))
        return _verdict(results, unavailable, tol)


def _runtime_tensor(layout: Layout, fetch, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    for mapped in layout.candidates(name):
        raw = fetch(mapped.runtime_name)
        if raw is not None:
            return apply_ops(raw, mapped, shape)
    return None


def _verdict(results: list[TensorParity], unavailable: list[str], tol) -> CheckResult:
    ranked = worst_first(results)
    failed = [r for r in results if not r.ok]
    metrics = {
        "tensors_compared": len(results), "tensors_failed": len(failed), "tensors_unavailable": len(unavailable),
        "max_abs": max((r.max_abs for r in results), default=None),
        "max_rel": max((r.max_rel for r in results), default=None),
        "min_cosine": min((r.cosine for r in results), default=None),
        "atol": tol.atol, "rtol": tol.rtol,
    }
    details = {"worst": [r.as_dict() for r in ranked[:WORST_LISTED]], "unavailable": unavailable[:50]}
    if not results:
        return CheckResult("na", "the runtime exposes none of the checkpoint's tensors", metrics, details)
    if failed:
        top = ranked[0]
        reason = (f"parity: {len(failed)}/{len(results)} tensors outside atol={tol.atol:g} rtol={tol.rtol:g}; "
                  f"worst {top.name}: max_abs={top.max_abs:.3g} max_rel={top.max_rel:.3g} "
                  f"cosine={top.cosine:.6f} {top.note}".rstrip())
        return CheckResult("fail", reason, metrics, details)
    note = f"; {len(unavailable)} not exposed by the runtime" if unavailable else ""
    return CheckResult("pass", f"{len(results)} tensors within atol={tol.atol:g} rtol={tol.rtol:g}{note}", metrics, details)


CHECK = WeightParityCheck()
