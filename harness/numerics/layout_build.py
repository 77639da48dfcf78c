"""Build the tensors a runtime holds from the checkpoint, by the same layout tables (tp 1).

harness.numerics.layout cuts a checkpoint tensor back out of a runtime tensor; this module goes the other
way, for runtimes that expose only a digest of each tensor (SGLang's ``/weights_checker``): the
runtime tensor is assembled from its checkpoint members (stacked experts, fused q/k/v and
gate/up, zero padding of the vocabulary) and hashed the way the runtime hashes it.

Each op of a rule, read forwards from the runtime tensor, places the checkpoint tensor:
``index`` picks one entry of a new leading dim, ``chunk`` / ``concat`` a block of a dim,
``transpose`` swaps two dims, ``tp_shard`` is the identity at tp 1, and ``unpad`` (with
``{multiple: M}``) pads the rows (dim 0) up to a multiple of M with zeros (vocabulary padding;
``unpad: true`` says nothing of the size: such a tensor cannot be rebuilt).
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, final

import numpy as np

from harness.numerics.layout import Layout, Mapped
from harness.numerics.tensors import BF16, bits, widen


class CannotBuild(Exception):
    """The layout does not say enough to rebuild this runtime tensor (its message says what is missing)."""


@final
@dataclasses.dataclass(frozen=True)
class Placement:
    """Where one checkpoint tensor sits in a runtime tensor.

    ``region`` indexes the runtime tensor (an int per stacked dim, a slice per other dim);
    ``axes``: the checkpoint dims in the order the region's dims hold them.
    """

    name: str
    region: tuple[int | slice, ...]
    axes: tuple[int, ...]
    shape: tuple[int, ...]


def members_by_runtime(layout: Layout, names: Iterable[str], architecture: str | None) -> dict[str, list[tuple[str, Mapped]]]:
    """Checkpoint names grouped by the runtime tensor their layout rule maps them into."""
    out: dict[str, list[tuple[str, Mapped]]] = {}
    for name in names:
        mapped = layout.candidates(name, architecture)[0]
        out.setdefault(mapped.runtime_name, []).append((name, mapped))
    return out


def build(members: Sequence[tuple[str, Mapped]], read: Callable[[str], np.ndarray],
          shape_of: Callable[[str], tuple[int, ...]]) -> np.ndarray:
    """The runtime tensor the members make up (zeros where nothing is placed: padding)."""
    if not members:
        raise CannotBuild("no checkpoint tensor maps to this runtime tensor")
    placements = [place(name, mapped, shape_of) for name, mapped in members]
    ranks = {len(p.shape) for p in placements}
    if len(ranks) != 1:
        raise CannotBuild(f"{members[0][1].runtime_name}: its members give it {sorted(ranks)} dims")
    shape = tuple(max(sizes) for sizes in zip(*(p.shape for p in placements), strict=True))
    out: np.ndarray | None = None
    for p in placements:
        tensor = read(p.name)
        if out is None:
            out = np.zeros(shape, dtype=tensor.dtype)
        out[p.region] = np.transpose(tensor, p.axes)
    assert out is not None
    return out


def runtime_shape(members: Sequence[tuple[str, Mapped]], shape_of: Callable[[str], tuple[int, ...]]) -> tuple[int, ...]:
    """The shape of the runtime tensor the members make up (without reading a value)."""
    shapes = {place(name, mapped, shape_of).shape for name, mapped in members}
    if len({len(s) for s in shapes}) != 1:
        raise CannotBuild(f"{members[0][1].runtime_name}: its members give it {sorted(len(s) for s in shapes)} dims")
    return tuple(max(sizes) for sizes in zip(*shapes, strict=True))


def place(name: str, mapped: Mapped, shape_of: Callable[[str], tuple[int, ...]]) -> Placement:
    """Where checkpoint tensor ``name`` sits in ``mapped.runtime_name``: the rule's ops reversed."""
    shape = tuple(shape_of(name))
    cur = list(range(len(shape)))  # the current tensor's dims, named by ids; 0..n-1 are the checkpoint's
    size = dict(enumerate(shape))
    start = dict.fromkeys(cur, 0)
    fixed: dict[int, int] = {}
    for op in reversed(mapped.ops):
        (kind, arg), = op.items()
        if kind == "unpad":
            multiple = int(arg.get("multiple", 0)) if isinstance(arg, Mapping) else 0
            if multiple <= 0:
                raise CannotBuild(f"{mapped.runtime_name} is padded, but its layout rule gives no size "
                                  "('unpad: {multiple: M}')")
            size[cur[0]] = -(-size[cur[0]] // multiple) * multiple
        elif kind == "transpose":
            a, b = int(arg[0]), int(arg[1])
            cur[a], cur[b] = cur[b], cur[a]
        elif kind in ("chunk", "concat"):
            d = cur[int(arg["dim"])]
            offset, total = _block(kind, arg, name, mapped, shape_of, size[d])
            start[d] += offset
            size[d] = total
        elif kind == "index":
            i = int(mapped.groups[arg]) if isinstance(arg, str) else int(arg)
            d = len(size)
            cur.insert(0, d)
            size[d], fixed[d] = i + 1, i
        elif kind != "tp_shard":
            raise CannotBuild(f"{mapped.runtime_name}: layout op {kind!r} cannot be reversed")
    region = tuple(fixed[d] if d in fixed else slice(start[d], start[d] + shape[d]) for d in cur)
    axes = tuple(d for d in cur if d not in fixed)
    return Placement(name, region, axes, tuple(size[d] for d in cur))


def _block(kind: str, arg: Mapping[str, Any], name: str, mapped: Mapped, shape_of: Callable[[str], tuple[int, ...]],
           size: int) -> tuple[int, int]:
    """(offset of this tensor's block, the dim's full size) for a chunk or concat op."""
    if kind == "chunk":
        part, parts = int(arg["part"]), int(arg["parts"])
        return part * size, parts * size
    dim = int(arg["dim"])
    members = [str(m).format(**mapped.groups) for m in arg["members"]]
    if name not in members:
        raise CannotBuild(f"{mapped.runtime_name}: {name} is not among its concat members {members}")
    sizes = [shape_of(m)[dim] for m in members]
    at = members.index(name)
    return sum(sizes[:at]), sum(sizes)


def digest(tensor: np.ndarray, dtype: str) -> str:
    """SGLang's per-tensor checksum of a tensor held in ``dtype`` (tensor_hash on a non-CUDA
    device): the first 8 bytes of sha256 over the contiguous bytes, as 16 hex digits. Hashed in
    place (no bytes copy); a bf16 tensor built from a bf16 checkpoint is hashed as stored."""
    data = np.ascontiguousarray(as_dtype(tensor, dtype))
    return hashlib.sha256(data.data.cast("B")).digest()[:8].hex()


def as_dtype(tensor: np.ndarray, dtype: str) -> np.ndarray:
    """The tensor cast as torch casts it: float32, float16, or bfloat16 (round to nearest even).
    A tensor stored in bf16 (harness.numerics.tensors.BF16) asked for as bf16 is its own bytes: no cast."""
    if tensor.dtype == BF16:
        if dtype in ("bfloat16", "bf16"):
            return bits(tensor)
        tensor = widen(tensor)  # exact; then cast like any float32 tensor
    if dtype in ("float32", "fp32"):
        return tensor.astype(np.float32, copy=False)
    if dtype in ("float16", "fp16", "half"):
        return tensor.astype(np.float16)
    if dtype in ("bfloat16", "bf16"):
        if np.isnan(tensor).any():  # torch's NaN bit patterns in bf16 differ by code path
            raise CannotBuild("holds NaN, whose bfloat16 bytes depend on the cast's code path")
        bits32 = tensor.astype(np.float32).view(np.uint32).astype(np.uint64)
        rounded = (bits32 + 0x7FFF + ((bits32 >> 16) & 1)) >> 16
        return rounded.astype(np.uint16)
    raise CannotBuild(f"no byte layout known for dtype {dtype!r}")
