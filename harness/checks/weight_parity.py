"""Weight parity: every checkpoint tensor against what the live runtime holds, layouts undone.

Tensors the runtime returns by value are compared within the dtype's tolerance; those it does
not return are compared by digest where the runtime offers one (harness.checks.weight_digest).

Streaming and bounded: checkpoint tensors are taken in the order of the runtime tensor that
holds them, so a fused or stacked runtime tensor (128 experts' gate/up) is fetched once, its
members compared as views of it while the next one is fetched, and dropped
(harness.checks.weight_stream: a few tensors up to a byte budget, never several large ones). The
checkpoint is read one tensor at a time, and the comparison itself works in bounded chunks
(harness.numerics.tensordiff).
Coverage (harness.checks.weight_coverage) counts every checkpoint element as verified by value,
by digest, or not verified with the reason; ``truncate_rows`` on a card makes it a sample.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from harness.checks.base import CheckContext, CheckResult
from harness.checks.figure import Figure
from harness.checks.meaning import EMPTY_WEIGHTS, CheckDefaults, WeightsUnreadable
from harness.checks.parity import TensorParity, compare, worst_first
from harness.checks.weight_coverage import CoverageTally, kind_of
from harness.checks.weight_digest import DigestParity, DigestPass, compare_digests, digests_first, sizing_rows
from harness.checks.weight_figure import weight_figure
from harness.checks.weight_stream import BoundedFetch, PassClock, ReadBuffer
from harness.config.cards import Tolerance
from harness.numerics.checkpoint import Checkpoint
from harness.numerics.checkpointmap import CheckpointMap
from harness.numerics.finitememo import FiniteMemo
from harness.numerics.layout import CutContext, Layout, LayoutUnavailable, Recovered, recover
from harness.numerics.layout_build import members_by_runtime
from harness.numerics.tensorwire import end_transfer, transfer_stats
from harness.runtimes.base import WeightDigests
from harness.runtimes.client import weight_digests

WORST_LISTED = 10


@dataclasses.dataclass(frozen=True)
class _Unavailable:
    name: str
    why: str


class WeightParityCheck(CheckDefaults):
    name = "weight_parity"
    key_metric = "max_abs"
    na_rules = (EMPTY_WEIGHTS, WeightsUnreadable())
    tensor_table = "worst"

    def figure(self, metrics: Mapping[str, Any], details: Mapping[str, Any]) -> Figure:
        return weight_figure(metrics)

    def run(self, ctx: CheckContext) -> CheckResult:
        ckpt = Checkpoint(ctx.checkpoint)
        layout = Layout.load(ctx.weight_layout)
        tally = CoverageTally(total=sum(_elements(ckpt.shape(n)) for n in ckpt.names()))
        tol, rows, clock = ctx.card.tolerance(ctx.cell.dtype), ctx.card.truncate_rows, PassClock()
        t0 = time.perf_counter()
        try:
            first = digests_first(ctx.client, ckpt, layout, ctx.card.architecture, _offered(ctx), ctx.cell.device,
                                  ctx.cell.tp, ctx.cell.dtype)
            walk = _Walk(ckpt, layout, None, CutContext(shape_of=ckpt.shape, tp=ctx.cell.tp, truncated_rows=rows), tol,
                         ctx.card.architecture, tally, clock,
                         explain=getattr(ctx.client, "why_unexposed", None) or _no_reason)
            results, unavailable = _walk_by_value(ctx, walk, skip=first.settled if first else frozenset())
            digests: list[DigestParity] = []
            if first:
                digests, sized = _settle_digests(ctx, walk, first)
                results += sized
                unavailable = [_Unavailable(u.name, f"{u.why}; {first.left[u.name]}" if u.name in first.left else u.why)
                               for u in unavailable]
            elif unavailable:
                digests, unavailable = _by_digest(ctx, ckpt, layout, unavailable)
                for d in digests:
                    tally.by_digest(sum(_elements(ckpt.shape(n)) for n in d.members))
        finally:
            end_transfer(ctx.client)  # the shared-memory region, if any, is not kept for other checks
        for u in unavailable:
            tally.not_verified(u.name, _elements(ckpt.shape(u.name)), kind_of(u.why, rows, ctx.cell.tp))
        assert walk.fetch is not None, "set by _walk_by_value"
        io = _io_figures(ckpt, walk.fetch, clock, time.perf_counter() - t0, transfer_stats(ctx.client))
        io["digest_s"] = round(first.seconds, 4) if first else None
        return _verdict(results, unavailable, tol, ctx.cell.dtype, ctx.weight_layout, digests, tally, io)


def _walk_by_value(ctx: CheckContext, walk: _Walk, skip: frozenset[str]) -> tuple[list[TensorParity], list[_Unavailable]]:
    """Compare, by value, every checkpoint tensor not in ``skip``, streaming the runtime tensors
    that hold them and reading the checkpoint in place where the platform allows; a runtime that
    saved its state for this (vLLM) removes it after."""
    order = [n for n in stream_order(walk.ckpt, walk.layout, walk.architecture) if n not in skip]
    walk.candidates = {n: walk.layout.candidates(n, walk.architecture) for n in order}  # once: 3147 names in the MoE
    plan = [walk.candidates[n][0].runtime_name for n in order]
    sizes: dict[str, int] = {}
    for n, runtime_name in zip(order, plan, strict=True):  # about the bytes each runtime tensor brings: how far to fetch ahead
        sizes[runtime_name] = sizes.get(runtime_name, 0) + walk.ckpt.nbytes(n)
    results: list[TensorParity] = []
    unavailable: list[_Unavailable] = []
    rows = walk.cut.truncated_rows
    try:
        with BoundedFetch(lambda name: ctx.client.weight(name, rows), walk.clock, plan=plan, sizes=sizes) as walk.fetch, \
                CheckpointMap(walk.ckpt) as maps:
            walk.maps = maps if maps.available else None
            for name in order:
                outcome = _compare_one(walk, name)
                if isinstance(outcome, TensorParity):
                    results.append(outcome)
                else:
                    unavailable.append(outcome)
    finally:
        walk.maps = None  # closed with the block: later reads (sizing a differing digest) use the buffer
        if walk.finite is not None:
            walk.finite.save()
        release = getattr(ctx.client, "release_weights", None)
        if release is not None:
            release()
    return results, unavailable


def stream_order(ckpt: Checkpoint, layout: Layout, architecture: str | None) -> list[str]:
    """Checkpoint names grouped by the runtime tensor that holds them (its members consecutive)."""
    return sorted(ckpt.names(), key=lambda n: (layout.candidates(n, architecture)[0].runtime_name, n))


def _no_reason(_name: str) -> str | None:
    return None


def _elements(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _io_figures(ckpt: Checkpoint, fetch: BoundedFetch, clock: PassClock, seconds: float,
                wire: dict[str, float] | None) -> dict[str, object]:
    """What was moved and how long each pass took, for the report and benchmarks/bench_scale.py."""
    total = sum(ckpt.nbytes(n) for n in ckpt.names())
    fmt = None if wire is None else _wire_format(wire)
    return {"checkpoint_bytes": total, "transferred_bytes": fetch.fetched_bytes, "largest_runtime_tensor_bytes": fetch.largest,
            "seconds": seconds, "transfer_busy_s": round(fetch.busy_s, 4), "transfer_format": fmt,
            **{f"{k}_s": round(v, 4) for k, v in clock.seconds.items()}}


def _wire_format(wire: dict[str, float]) -> str:
    """How the tensors came: shared-memory, binary (socket), json, or "mixed: shared-memory 70, binary 5"."""
    counts = {"shared-memory": wire.get("region_tensors", 0), "binary": wire["raw_tensors"], "json": wire["json_tensors"]}
    used = {k: int(v) for k, v in counts.items() if v}
    if len(used) <= 1:
        return next(iter(used), "none")
    return "mixed: " + ", ".join(f"{k} {v}" for k, v in used.items())


def _by_digest(ctx: CheckContext, ckpt: Checkpoint, layout: Layout, unavailable: list[_Unavailable]
               ) -> tuple[list[DigestParity], list[_Unavailable]]:
    """Compare by digest what was not readable by value, when the runtime offers digests."""
    offered = _offered(ctx)
    if offered is None:  # the runtime publishes no digests
        return [], unavailable
    blocked = offered.why_not(ctx.cell.device, ctx.cell.tp)
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


def _offered(ctx: CheckContext) -> WeightDigests | None:
    """The weight digests the cell's runtime declares it publishes (its adapter's capabilities), if any."""
    return ctx.capabilities.weight_digests if ctx.capabilities is not None else None


def _settle_digests(ctx: CheckContext, walk: _Walk, first: DigestPass) -> tuple[list[DigestParity], list[TensorParity]]:
    """Count what the digests settled; size each differing runtime tensor by its values.

    A differing tensor whose values were all fetched and are all within tolerance passes by value
    (bytes that differ within tolerance, e.g. another rounding of the same float); otherwise it
    fails by digest, with the values' max |Δ| where the runtime returned them.
    """
    kept: list[DigestParity] = []
    sized: list[TensorParity] = []
    for d in first.results:
        elements = sum(_elements(walk.ckpt.shape(n)) for n in d.members)
        if d.ok:
            walk.tally.by_digest(elements)
            kept.append(d)
            continue
        d, values, whole = _size_by_value(ctx, walk, d)
        sized += values
        if whole and all(v.ok for v in values):
            walk.tally.by_value(elements)
        else:
            walk.tally.by_digest(elements)
            kept.append(d)
    return kept, sized


def _size_by_value(ctx: CheckContext, walk: _Walk, d: DigestParity) -> tuple[DigestParity, list[TensorParity], bool]:
    """The values of a runtime tensor whose digest differs (up to ``sizing_rows``), compared member by
    member. Returns the digest result with what the values say, the comparisons, and whether they
    covered every element."""
    members = members_by_runtime(walk.layout, d.members, walk.architecture)[d.runtime_name]
    rows = sizing_rows(members, walk.ckpt)
    raw = walk.clock.timed("transfer", lambda: ctx.client.weight(d.runtime_name, rows))
    if raw is None:
        return dataclasses.replace(d, sized="digest differs, no values exposed (the runtime does not return "
                                            f"{d.runtime_name} by value)"), [], False
    cut = dataclasses.replace(walk.cut, truncated_rows=rows)
    values: list[TensorParity] = []
    whole = True
    for name, mapped in members:
        try:
            got = walk.clock.timed("layout", functools.partial(recover, raw, mapped, name, cut))
        except LayoutUnavailable:
            whole = False  # beyond the rows fetched
            continue
        whole = whole and not got.partial
        values.append(_compare_recovered(walk, name, d.runtime_name, got))
    return dataclasses.replace(d, sized=_sizing_note(values, rows, whole),
                               max_abs=max((v.max_abs for v in values), default=None)), values, whole


def _sizing_note(values: list[TensorParity], rows: int | None, whole: bool) -> str:
    fetched = "all its values" if whole else f"its first {rows} rows"
    if not values:
        return f"digest differs; {fetched} hold none of its checkpoint tensors"
    worst = worst_first(values)[0]
    if worst.ok:
        return (f"digest differs; {fetched} are within tolerance (max |Δ| {worst.max_abs:.3g}): "
                + ("the bytes differ within tolerance" if whole else "the difference lies beyond them"))
    bad = sum(1 for v in values if not v.ok)
    return (f"by value ({fetched}): {bad}/{len(values)} checkpoint tensors outside tolerance, worst {worst.name} "
            f"max |Δ| {worst.max_abs:.3g}, max rel {worst.max_rel:.3g}, frac_outside {worst.frac_outside:.3g}")


@dataclasses.dataclass
class _Walk:
    """What comparing one checkpoint tensor after another needs (mutable: the tally and clock fill up)."""

    ckpt: Checkpoint
    layout: Layout
    fetch: BoundedFetch | None  # set while the walk runs
    cut: CutContext
    tol: Tolerance
    architecture: str
    tally: CoverageTally
    clock: PassClock
    buffer: ReadBuffer = dataclasses.field(default_factory=ReadBuffer)
    maps: CheckpointMap | None = None  # checkpoint read in place (mmap) where the platform allows
    candidates: dict[str, list] = dataclasses.field(default_factory=dict)  # layout.candidates, computed once
    explain: Callable[[str], str | None] = _no_reason  # the runtime's reason a tensor has no counterpart
    finite: FiniteMemo | None = None  # checkpoint tensors known finite (harness/numerics/finitememo.py)

    def __post_init__(self) -> None:
        if self.finite is None:
            self.finite = FiniteMemo(self.ckpt.extent)

    def want(self, name: str, rows: int | None) -> np.ndarray:
        """The checkpoint tensor: a view of the page cache, or read into the reused buffer."""
        if self.maps is not None:
            return self.maps.view(name, rows)
        return self.ckpt.view(name, rows, into=self.buffer.take(self.ckpt.nbytes(name)))

    def done(self, name: str, rows: int | None) -> None:
        if self.maps is not None:
            self.maps.release(name, rows)


def _compare_one(walk: _Walk, name: str) -> TensorParity | _Unavailable:
    """One checkpoint tensor: find it in the runtime, undo the layout, compare what it holds."""
    why = "not exposed by the runtime"
    assert walk.fetch is not None, "compare inside _walk_by_value"
    for mapped in walk.candidates.get(name) or walk.layout.candidates(name, walk.architecture):
        raw = walk.fetch(mapped.runtime_name)
        if raw is None:
            continue
        try:
            got = walk.clock.timed("layout", functools.partial(recover, raw, mapped, name, walk.cut))
        except LayoutUnavailable as exc:
            why = str(exc)
            continue
        _count(walk.tally, name, walk.ckpt.shape(name), got, walk.cut)
        return _compare_recovered(walk, name, mapped.runtime_name, got)
    return _Unavailable(name, walk.explain(name) or why)


def _count(tally: CoverageTally, name: str, shape: tuple[int, ...], got: Recovered, cut: CutContext) -> None:
    """Elements compared by value, and the rest of the tensor as not verified (sampled or other ranks)."""
    total = _elements(shape)
    compared = math.prod(len(range(*s.indices(n))) for s, n in zip(got.region, shape, strict=True)) if got.region else total
    tally.by_value(compared)
    kind = (f"sampled: truncate_rows={cut.truncated_rows}" if cut.truncated_rows is not None
            else f"held by other tp ranks (tp={cut.tp})")
    tally.not_verified(name, total - compared, kind)


def _compare_recovered(walk: _Walk, name: str, runtime_name: str, got: Recovered) -> TensorParity:
    ckpt = walk.ckpt
    rows = got.region[0].stop if got.region else None
    want = walk.clock.timed("checkpoint_read", lambda: walk.want(name, rows))
    want = want[got.region] if got.region else want
    where = [f"via {runtime_name}"] if runtime_name != name else []
    if got.partial:
        shown = ", ".join(f"{s.start}:{s.stop}" if s != slice(None) else ":" for s in got.region)
        where.append(f"compared [{shown}] of {list(ckpt.shape(name))} (tp shard / truncate_rows)")
    if got.padding_note:
        where.append(got.padding_note)
    finite = None if got.partial else walk.finite  # only a whole tensor settles its finiteness
    known = finite is not None and finite.known(name)
    try:
        result = walk.clock.timed("compare", lambda: compare(name, got.tensor, want, walk.tol, want_finite=known,
                                                             padding_max_abs=got.padding_max_abs, note="; ".join(where)))
    finally:
        walk.done(name, rows)
    if finite is not None and not known and result.max_abs == 0.0 and "non-finite" not in result.note:
        finite.add(name)  # equal and finite: so is the checkpoint tensor
    return result


def _metrics(results: list[TensorParity], unavailable: list[_Unavailable], tol: Tolerance, dtype: str, layout: str,
             digests: list[DigestParity], tally: CoverageTally) -> dict[str, object]:
    ranked = worst_first(results)
    failed = [r for r in results if not r.ok]
    differ = [d for d in digests if not d.ok]
    return {
        "tensors_compared": len(results), "tensors_failed": len(failed), "tensors_unavailable": len(unavailable),
        "max_abs": max((r.max_abs for r in results), default=None),
        "max_rel": max((r.max_rel for r in results), default=None),
        "max_tol_ratio": max((r.tol_ratio for r in results), default=None),
        "min_cosine": min((r.cosine for r in results), default=None),
        "nonzero_padding": sum(1 for r in results if r.padding_max_abs > 0),
        "dtype": dtype, "atol": tol.atol, "rtol": tol.rtol, "layout": layout,
        "worst_tensor": ranked[0].name if failed else (differ[0].runtime_name if differ else None),
        "tensors_by_digest": sum(len(d.members) for d in digests),
        "tensors_digest_differs": sum(len(d.members) for d in differ),
        **tally.metrics(),
    }


def _verdict(results: list[TensorParity], unavailable: list[_Unavailable], tol: Tolerance, dtype: str,
             layout: str, digests: list[DigestParity], tally: CoverageTally, io: dict[str, object]) -> CheckResult:
    ranked = worst_first(results)
    failed = [r for r in results if not r.ok]
    differ = [d for d in digests if not d.ok]
    metrics = _metrics(results, unavailable, tol, dtype, layout, digests, tally)
    details = {"worst": [r.as_dict() for r in ranked[:WORST_LISTED]],
               "unavailable": [u.name for u in unavailable[:50]],
               "unavailable_reasons": [dataclasses.asdict(u) for u in unavailable[:50]],
               "digests": [d.as_dict() for d in sorted(digests, key=lambda d: d.ok)[:50]],
               "not_verified": tally.details(), "io": io}
    if not results and not digests:
        return CheckResult("na", "the runtime exposes none of the checkpoint's tensors", metrics, details)
    if differ:
        names = "; ".join(f"{d.runtime_name} (from {len(d.members)} checkpoint tensors: {d.sized or 'no values'})"
                          for d in differ[:5])
        return CheckResult("fail", f"parity: {len(differ)}/{len(digests)} runtime tensors differ from the checkpoint "
                                   f"by digest (sha256 via /weights_checker): {names}; {tally.headline()}",
                           metrics, details)
    if failed:
        top = ranked[0]
        reason = (f"parity: {len(failed)}/{len(results)} tensors outside {dtype} tolerance atol={tol.atol:g} "
                  f"rtol={tol.rtol:g}; worst {top.name}: max_abs={top.max_abs:.3g} max_rel={top.max_rel:.3g} "
                  f"cosine={top.cosine:.6f} frac_outside={top.frac_outside:.3g} {top.note}".rstrip())
        return CheckResult("fail", f"{reason}; {tally.headline()}", metrics, details)
    parts = [f"{len(results)} tensors within {dtype} tolerance atol={tol.atol:g} rtol={tol.rtol:g}"] if results else []
    if digests:
        parts.append(f"{metrics['tensors_by_digest']} byte-identical by digest ({len(digests)} runtime tensors, "
                     f"sha256 via /weights_checker{'' if results else '; no value fetched'})")
    if unavailable:
        parts.append(f"{len(unavailable)} not exposed by the runtime")
    if tally.missing:
        return CheckResult("pass", f"{tally.headline()}: " + "; ".join(parts), metrics, details)
    return CheckResult("pass", "; ".join(parts) + f"; {tally.headline()}", metrics, details)


CHECK = WeightParityCheck()
