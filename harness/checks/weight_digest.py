"""Weight parity by digest, for tensors a runtime will not return by value.

SGLang's MoE model classes (Qwen3-MoE, DeepSeek-V2, GLM-4-MoE, ...) have no
``/get_weights_by_name``, but every SGLang server answers ``/weights_checker`` with a checksum of
each tensor it holds. Each such runtime tensor is rebuilt from the checkpoint by the layout table
(harness.layout_build: stacked experts, fused q/k/v and gate/up, zero-padded vocabulary), cast to
the cell's dtype, hashed the same way and compared. A digest says only "same bytes or not": a
transposed, format-cast or wrongly stacked expert tensor fails by name, without an error size.

The runtime hashes with sha256 on every device except CUDA and ROCm, where it uses a Triton
kernel this harness cannot reproduce; there, and at tp > 1 (digests are per rank shard), the
tensors stay "not exposed" with that reason.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, final

from harness.checkpoint import Checkpoint
from harness.layout import Layout
from harness.layout_build import CannotBuild, build, digest, members_by_runtime

NO_SHA256_DEVICES = ("cuda", "rocm")


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

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def why_not(device: str, tp: int) -> str | None:
    """Why digests of this cell cannot be reproduced, or None when they can."""
    if device in NO_SHA256_DEVICES:
        return (f"on {device} the runtime's /weights_checker hashes with a Triton kernel, not sha256: "
                "its digests cannot be reproduced from the checkpoint")
    if tp > 1:
        return f"/weights_checker digests are per tp rank shard; they are rebuilt from the checkpoint at tp 1 only (tp={tp})"
    return None


def compare_digests(ckpt: Checkpoint, layout: Layout, wanted: Iterable[str], architecture: str | None,
                    ranks: Sequence[Mapping[str, Any]], dtype: str) -> tuple[list[DigestParity], dict[str, str]]:
    """Digest parity of the runtime tensors holding the checkpoint tensors ``wanted``.

    Returns the comparisons and, for checkpoint tensors still not compared, why.
    """
    wanted = set(wanted)
    checksums: Mapping[str, str] = ranks[0]["checksums"] if ranks else {}
    results: list[DigestParity] = []
    left: dict[str, str] = {}
    for runtime_name, members in members_by_runtime(layout, ckpt.names(), architecture).items():
        names = tuple(n for n, _ in members)
        if not wanted.intersection(names):
            continue
        if runtime_name not in checksums:
            left.update(dict.fromkeys(wanted.intersection(names), f"{runtime_name} is neither readable nor in the runtime's checksums"))
            continue
        try:
            expected = digest(build(members, ckpt.read, ckpt.shape), dtype)
        except (CannotBuild, KeyError) as exc:  # KeyError: a member the rule names is not in the checkpoint
            left.update(dict.fromkeys(wanted.intersection(names), f"cannot rebuild {runtime_name}: {exc}"))
            continue
        got = str(checksums[runtime_name])
        mine = tuple(n for n in names if n in wanted)  # members already compared by value are not counted twice
        results.append(DigestParity(runtime_name, mine, got == expected, expected, got))
    return results, left
