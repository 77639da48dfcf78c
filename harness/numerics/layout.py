"""Undo runtime weight layouts: data-driven rules mapping checkpoint names to runtime tensors.

A rule file (``harness/numerics/layouts/NAME.yaml``) lists ``match`` (a regex on the checkpoint name),
``runtime`` (the runtime tensor's name, formatted with the match's groups), optionally
``architectures`` (the rule applies only to these card architectures) and ``ops``, applied in
order to the runtime tensor to cut the checkpoint tensor back out of it:

- ``{index: GROUP}``: take ``[int(GROUP)]`` along dim 0 (stacked experts; GROUP may be a number);
- ``{chunk: {dim, part, parts, sharded}}``: the dim holds ``parts`` equal blocks, keep ``part``
  (fused gate/up of one expert);
- ``{concat: {dim, members, sharded}}``: the dim is the concatenation of the checkpoint tensors
  ``members`` (formatted with the match's groups; block sizes read from the checkpoint), keep
  this tensor's block (fused q/k/v of different sizes);
- ``{transpose: [d0, d1]}``: swap two dims (transposed storage);
- ``{tp_shard: {dim}}``: with tp > 1 the runtime holds rank 0's contiguous shard of that dim,
  so only that prefix of the checkpoint tensor is compared;
- ``{unpad: true}``: cut every dim down to the checkpoint's shape; what is cut off is padding
  (vocab padding) and must be zeros.

``sharded: true`` on chunk/concat says every block is split over the tp ranks (SGLang's
MergedColumnParallelLinear, QKVParallelLinear, FusedMoE w13): rank 0 holds the first 1/tp of each.
A runtime tensor fetched with ``truncate_rows`` holds only its first rows: cuts that fall past
them are reported unavailable, partial ones are compared on what is there.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, final

import numpy as np
import yaml

from harness.errors import ConfigError
from harness.numerics.tensors import widen

LAYOUTS_DIR = Path(__file__).resolve().parent / "layouts"
_OPS = ("index", "chunk", "concat", "transpose", "tp_shard", "unpad")


class LayoutUnavailable(Exception):
    """The runtime tensor does not hold this checkpoint tensor (past the truncated rows, other rank)."""


@final
@dataclasses.dataclass(frozen=True)
class LayoutRule:
    """One checkpoint-name pattern and how to cut its tensor out of a runtime tensor."""

    pattern: re.Pattern[str]
    runtime: str
    ops: tuple[Mapping[str, Any], ...]
    architectures: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> LayoutRule:
        try:
            pattern = re.compile(str(data["match"]))
            runtime = str(data["runtime"])
        except KeyError as exc:
            raise ConfigError(f"{where}: a layout rule needs 'match' and 'runtime', got {dict(data)!r}") from exc
        except re.error as exc:
            raise ConfigError(f"{where}: bad regex {data.get('match')!r}: {exc}") from exc
        ops = tuple(data.get("ops") or ())
        for op in ops:
            if not isinstance(op, Mapping) or len(op) != 1 or next(iter(op)) not in _OPS:
                raise ConfigError(f"{where}: bad op {op!r}; each op is one of {', '.join(_OPS)}")
        archs = data.get("architectures") or ()
        if isinstance(archs, str) or not all(isinstance(a, str) for a in archs):
            raise ConfigError(f"{where}: 'architectures' is a list of names such as [LlamaForCausalLM], got {archs!r}")
        return cls(pattern, runtime, ops, tuple(archs))


@final
@dataclasses.dataclass(frozen=True)
class Mapped:
    """Where a checkpoint tensor lives in the runtime and how to get it back."""

    runtime_name: str
    ops: tuple[Mapping[str, Any], ...]
    groups: Mapping[str, str]


@final
@dataclasses.dataclass(frozen=True)
class Layout:
    """An ordered list of rules; the first match wins, no match means same name, no ops."""

    name: str
    rules: tuple[LayoutRule, ...]

    @classmethod
    def load(cls, name: str, directory: Path = LAYOUTS_DIR) -> Layout:
        path = directory / f"{name}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in directory.glob("*.yaml"))
            raise ConfigError(f"unknown layout {name!r}: no {path}; known: {known}")
        data = yaml.safe_load(path.read_text()) or {}
        rules = tuple(LayoutRule.from_mapping(r, f"{path} rule {i}") for i, r in enumerate(data.get("rules") or ()))
        return cls(name, rules)

    def candidates(self, checkpoint_name: str, architecture: str | None = None) -> list[Mapped]:
        """The matching rule's mapping first, then the name itself as a fallback."""
        out = []
        for rule in self.rules:
            if rule.architectures and architecture is not None and architecture not in rule.architectures:
                continue
            m = rule.pattern.match(checkpoint_name)
            if m:
                groups = {k: v for k, v in m.groupdict().items() if v is not None}
                out.append(Mapped(rule.runtime.format(**groups), rule.ops, groups))
                break
        out.append(Mapped(checkpoint_name, (), {}))
        return out


@final
@dataclasses.dataclass(frozen=True)
class CutContext:
    """What cutting needs beyond the runtime tensor: checkpoint shapes, tp size, truncated rows."""

    shape_of: Callable[[str], tuple[int, ...]]
    tp: int = 1
    truncated_rows: int | None = None


@final
@dataclasses.dataclass(frozen=True)
class Recovered:
    """The checkpoint tensor (or the part of it the runtime holds) and the padding cut off it.

    ``region``: the slices of the checkpoint tensor that ``tensor`` corresponds to;
    ``padding_max_abs``: the largest |value| among padding cut off by ``unpad`` (0 when none).
    """

    tensor: np.ndarray
    region: tuple[slice, ...]
    padding_max_abs: float = 0.0
    padding_note: str = ""

    @property
    def partial(self) -> bool:
        return any(s != slice(None) for s in self.region)


@dataclasses.dataclass
class _Cut:
    t: np.ndarray
    short_dim: int | None  # the dim cut short by truncate_rows (runtime dim 0 until indexed away)
    prefix_dims: set[int]
    padding_max_abs: float = 0.0
    padding_note: str = ""


def recover(tensor: np.ndarray, mapped: Mapped, name: str, ctx: CutContext) -> Recovered:
    """Cut checkpoint tensor ``name`` out of ``tensor`` following ``mapped.ops``.

    Raises LayoutUnavailable when the runtime tensor does not hold it, ConfigError on a bad rule.
    """
    shape = tuple(ctx.shape_of(name))
    cut = _Cut(tensor, 0 if ctx.truncated_rows is not None and tensor.ndim else None, set())
    for op in mapped.ops:
        (kind, arg), = op.items()
        _OP_FUNCS[kind](cut, arg, mapped, name, shape, ctx)
    prefix = set(cut.prefix_dims) | ({cut.short_dim} if cut.short_dim is not None else set())
    region = tuple(slice(0, min(cut.t.shape[d], shape[d])) if d in prefix and d < len(shape) and cut.t.ndim == len(shape)
                   else slice(None) for d in range(len(shape)))
    return Recovered(cut.t, region, cut.padding_max_abs, cut.padding_note)


def apply_ops(tensor: np.ndarray, mapped: Mapped, want_shape: Sequence[int]) -> np.ndarray:
    """Cut the checkpoint tensor out of the runtime tensor (tp 1, no truncation, no concat)."""
    return recover(tensor, mapped, "", CutContext(shape_of=lambda _n: tuple(want_shape))).tensor


def _index(cut: _Cut, arg: Any, mapped: Mapped, name: str, shape: tuple[int, ...], ctx: CutContext) -> None:
    i = int(mapped.groups[arg]) if isinstance(arg, str) else int(arg)
    if i >= cut.t.shape[0]:
        why = f"the first {ctx.truncated_rows} rows fetched (truncate_rows)" if cut.short_dim == 0 else "this rank"
        raise LayoutUnavailable(f"index {i} of {mapped.runtime_name} lies beyond {why}; it holds {cut.t.shape[0]}")
    cut.t = cut.t[i]
    cut.short_dim = None if cut.short_dim in (None, 0) else cut.short_dim - 1
    cut.prefix_dims = {d - 1 for d in cut.prefix_dims if d > 0}


def _chunk(cut: _Cut, arg: Mapping[str, Any], mapped: Mapped, name: str, shape: tuple[int, ...], ctx: CutContext) -> None:
    dim, part, parts = int(arg["dim"]), int(arg["part"]), int(arg["parts"])
    if not 0 <= part < parts:
        raise ConfigError(f"layout rule for {mapped.runtime_name}: chunk part {part} is not in 0..{parts - 1}")
    sharded = bool(arg.get("sharded")) and ctx.tp > 1
    size = _ceil_div(shape[dim], ctx.tp) if sharded else shape[dim]
    if cut.short_dim != dim and cut.t.shape[dim] != size * parts and not sharded:
        size = cut.t.shape[dim] // parts  # no checkpoint-sized blocks: equal split of what is there
    _segment(cut, dim, part * size, size, sharded, mapped)


def _concat(cut: _Cut, arg: Mapping[str, Any], mapped: Mapped, name: str, shape: tuple[int, ...], ctx: CutContext) -> None:
    dim = int(arg["dim"])
    members = [str(m).format(**mapped.groups) for m in arg["members"]]
    if name not in members:
        raise ConfigError(f"layout rule for {mapped.runtime_name}: {name} is not among its concat members {members}")
    sharded = bool(arg.get("sharded")) and ctx.tp > 1
    sizes = []
    for member in members:
        try:
            full = ctx.shape_of(member)[dim]
        except KeyError:
            raise ConfigError(f"layout rule for {mapped.runtime_name}: concat member {member} is not in the "
                              f"checkpoint; fix the rule's members or its match") from None
        sizes.append(_ceil_div(full, ctx.tp) if sharded else full)
    at = members.index(name)
    _segment(cut, dim, sum(sizes[:at]), sizes[at], sharded, mapped)


def _segment(cut: _Cut, dim: int, start: int, size: int, sharded: bool, mapped: Mapped) -> None:
    have = cut.t.shape[dim]
    if start >= have:
        raise LayoutUnavailable(f"rows {start}:{start + size} of {mapped.runtime_name} lie beyond the "
                                f"{have} rows the runtime returned (truncate_rows)")
    cut.t = cut.t[(slice(None),) * dim + (slice(start, min(start + size, have)),)]  # a view, no copy
    if sharded:
        cut.prefix_dims.add(dim)


def _transpose(cut: _Cut, arg: Sequence[int], mapped: Mapped, name: str, shape: tuple[int, ...], ctx: CutContext) -> None:
    a, b = int(arg[0]), int(arg[1])
    cut.t = np.swapaxes(cut.t, a, b)
    swap = {a: b, b: a}
    cut.short_dim = swap.get(cut.short_dim, cut.short_dim) if cut.short_dim is not None else None
    cut.prefix_dims = {swap.get(d, d) for d in cut.prefix_dims}


def _tp_shard(cut: _Cut, arg: Mapping[str, Any], mapped: Mapped, name: str, shape: tuple[int, ...], ctx: CutContext) -> None:
    if ctx.tp > 1:
        cut.prefix_dims.add(int(arg["dim"]))


def _unpad(cut: _Cut, arg: Any, mapped: Mapped, name: str, shape: tuple[int, ...], ctx: CutContext) -> None:
    if cut.t.ndim != len(shape):
        return
    keep = tuple(slice(0, min(n, s)) for n, s in zip(cut.t.shape, shape, strict=True))
    if all(k.stop == n for k, n in zip(keep, cut.t.shape, strict=True)):
        return
    pad_mask = np.ones(cut.t.shape, dtype=bool)
    pad_mask[keep] = False
    padding = np.abs(widen(cut.t[pad_mask]).astype(np.float64))
    cut.padding_max_abs = float(padding.max()) if padding.size else 0.0
    if cut.padding_max_abs:
        rows = np.argwhere(np.abs(widen(cut.t)) * pad_mask > 0)[:, 0]
        cut.padding_note = (f"non-zero padding: max |x|={cut.padding_max_abs:.3g} in padded rows "
                            f"{int(rows.min())}..{int(rows.max())} (padding must be zeros)")
    cut.t = cut.t[keep]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


_OP_FUNCS: dict[str, Callable[..., None]] = {
    "index": _index, "chunk": _chunk, "concat": _concat, "transpose": _transpose,
    "tp_shard": _tp_shard, "unpad": _unpad,
}
