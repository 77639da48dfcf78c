"""Weight parity by digest: every tensor of a runtime that publishes reproducible checksums.

Every SGLang server answers ``/weights_checker`` with a checksum of each tensor it holds, for every
model class (its MoE classes, Qwen3-MoE, DeepSeek-V2, GLM-4-MoE, ..., have no
``/get_weights_by_name`` at all; its Llama family answers both). Each runtime tensor is rebuilt from
the checkpoint by the layout table (harness.numerics.layout_build: stacked experts, fused q/k/v and
gate/up, zero-padded vocabulary), cast to the cell's dtype, hashed the same way and compared:
all of the checkpoint in one pass over it, nothing sent over the wire but the checksums
(``digests_first``). A digest says only "same bytes or not"; weight parity then fetches the values
of a runtime tensor whose digest differs, where the model class returns them, to size the error
(``sizing_rows`` bounds how many rows), else says "digest differs, no values exposed".

Which runtimes publish digests, and where they can be rebuilt, each adapter declares
(``capabilities.weight_digests``, harness/runtimes/base.py): SGLang hashes with sha256 on every
device except CUDA and ROCm, where it uses a Triton kernel this harness cannot reproduce; there,
and at tp > 1 (digests are per rank shard), the tensors stay "not exposed" with that reason.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, final

from harness.numerics.checkpoint import Checkpoint
from harness.numerics.layout import Layout, Mapped
from harness.numerics.layout_build import CannotBuild, build, digest, members_by_runtime, runtime_shape
from harness.numerics.rebuiltdigests import RebuiltDigests
from harness.runtimes.base import WeightDigests
from harness.runtimes.client import RuntimeClient, weight_digests

_CANNOT = "cannot rebuild "  # an expected digest that is a reason instead
SIZING_ELEMENTS = 1 << 24  # values fetched to size one differing tensor: 16M elements (64 MB in float32)


@final
@dataclasses.dataclass(frozen=True)
class DigestParity:
    """One runtime tensor compared by digest, with the checkpoint tensors it settles (those of its
    members not already compared by value)."""

    runtime_name: str
    members: tuple[str, ...]
    ok: bool
    expected: str
    got: str
    sized: str = ""  # a differing digest: what its values say (max |Δ| and where), or why there are none
    max_abs: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@final
@dataclasses.dataclass(frozen=True)
class DigestPass:
    """What the runtime's digests settled before any value was fetched.

    ``left``: checkpoint tensors no digest settled (their runtime tensor has no checksum, or cannot
    be rebuilt), with why; they go to the comparison by value.
    """

    results: tuple[DigestParity, ...]
    left: Mapping[str, str]
    seconds: float

    @property
    def settled(self) -> frozenset[str]:
        return frozenset(n for d in self.results for n in d.members)

    @property
    def differ(self) -> tuple[DigestParity, ...]:
        return tuple(d for d in self.results if not d.ok)


def digests_first(client: RuntimeClient, ckpt: Checkpoint, layout: Layout, architecture: str | None,
                  offered: WeightDigests | None, device: str, tp: int, dtype: str) -> DigestPass | None:
    """Every runtime tensor compared by digest, or None when the runtime offers no digests this
    cell can reproduce (``offered``, its adapter's capability: none at all, or, for SGLang's
    ``/weights_checker``, a CUDA/ROCm device or tp > 1).

    The expected digests are rebuilt (or read from their memo, harness/numerics/rebuiltdigests.py) in a
    thread while the runtime hashes its own copy; a runtime that turns out to have no checksums
    stops the rebuild at the next tensor."""
    if offered is None or offered.why_not(device, tp) or getattr(client, "weight_digests", None) is None:
        return None
    t0 = time.perf_counter()
    stop = threading.Event()
    groups = members_by_runtime(layout, ckpt.names(), architecture)  # once, for the rebuild and the comparison
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rebuild-digests") as pool:
        rebuilt = pool.submit(expected_digests, ckpt, layout, architecture, dtype, stop, groups=groups)
        ranks = None
        try:
            ranks = weight_digests(client)
        finally:
            if ranks is None:  # no checksums (or the request failed): stop rebuilding
                stop.set()
        expected = rebuilt.result()
    if ranks is None:
        return None
    results, left = compare_digests(ckpt, layout, ckpt.names(), architecture, ranks, dtype, expected, groups)
    return DigestPass(tuple(results), left, time.perf_counter() - t0)


def expected_digests(ckpt: Checkpoint, layout: Layout, architecture: str | None, dtype: str,
                     stop: threading.Event | None = None, wanted: Iterable[str] | None = None,
                     groups: Mapping[str, list[tuple[str, Mapped]]] | None = None) -> dict[str, str]:
    """Each runtime tensor's digest as rebuilt from the checkpoint (or the reason it cannot be),
    memoised on disk; only the runtime tensors holding ``wanted`` checkpoint tensors when given.
    ``groups``: members_by_runtime of the checkpoint, when the caller has it already."""
    memo = RebuiltDigests.open(ckpt, layout, architecture, dtype)
    wanted = None if wanted is None else set(wanted)
    out: dict[str, str] = {}
    try:
        for runtime_name, members in (groups or members_by_runtime(layout, ckpt.names(), architecture)).items():
            if stop is not None and stop.is_set():
                break
            names = [n for n, _ in members]
            if wanted is not None and not wanted.intersection(names):
                continue
            known = memo.get(runtime_name, names)
            if known is None:
                try:
                    known = digest(build(members, ckpt.view, ckpt.shape), dtype)  # stored dtype: bf16 stays 16 bits
                except (CannotBuild, KeyError) as exc:  # KeyError: a member the rule names is not in the checkpoint
                    out[runtime_name] = f"{_CANNOT}{runtime_name}: {exc}"
                    continue
                memo.put(runtime_name, names, known)
            out[runtime_name] = known
    finally:
        memo.save()
    return out


def sizing_rows(members: Sequence[tuple[str, Mapped]], ckpt: Checkpoint, budget: int | None = None) -> int | None:
    """Rows of a runtime tensor to fetch to size its error: all (None) when it holds at most
    ``budget`` elements, else as many leading rows as fit (at least one).

    A 128-expert ``w13_weight`` of [128, 3072, 2048] (805M elements) gets its first 20 experts.
    """
    budget = SIZING_ELEMENTS if budget is None else budget
    shape = runtime_shape(members, ckpt.shape)
    if not shape or math.prod(shape) <= budget:
        return None
    return max(1, budget // max(1, math.prod(shape[1:])))


def compare_digests(ckpt: Checkpoint, layout: Layout, wanted: Iterable[str], architecture: str | None,
                    ranks: Sequence[Mapping[str, Any]], dtype: str, expected: Mapping[str, str] | None = None,
                    groups: Mapping[str, list[tuple[str, Mapped]]] | None = None) -> tuple[list[DigestParity], dict[str, str]]:
    """Digest parity of the runtime tensors holding the checkpoint tensors ``wanted``.

    Returns the comparisons and, for checkpoint tensors still not compared, why.
    """
    wanted = set(wanted)
    groups = groups or members_by_runtime(layout, ckpt.names(), architecture)
    if expected is None:
        expected = expected_digests(ckpt, layout, architecture, dtype, wanted=wanted, groups=groups)
    checksums: Mapping[str, str] = ranks[0]["checksums"] if ranks else {}
    results: list[DigestParity] = []
    left: dict[str, str] = {}
    for runtime_name, members in groups.items():
        names = tuple(n for n, _ in members)
        if not wanted.intersection(names):
            continue
        if runtime_name not in checksums:
            left.update(dict.fromkeys(wanted.intersection(names), f"{runtime_name} is neither readable nor in the runtime's checksums"))
            continue
        want = expected.get(runtime_name) or f"{_CANNOT}{runtime_name}: not rebuilt"
        if want.startswith(_CANNOT):
            left.update(dict.fromkeys(wanted.intersection(names), want))
            continue
        got = str(checksums[runtime_name])
        mine = tuple(n for n in names if n in wanted)  # members already compared by value are not counted twice
        results.append(DigestParity(runtime_name, mine, got == want, want, got))
    return results, left
