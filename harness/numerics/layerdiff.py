"""The first divergent layer: a cell's per-layer hidden states against its reference's, judged per dtype.

Pure numpy (no torch, no runtime). States are ``[prompts, points, hidden]`` last-token vectors taken at
named probe points in forward order (harness/runtimes/hf_layers.py): ``embeddings``, then per decoder
layer ``3:attention``, ``3:mlp`` (``3:moe``), ``3:layer`` (its output, residual included), then
``final:norm``. Per point, over the prompts, the worst **relative error** ``|got - ref| / |ref|`` and
the worst **cosine**; the first point beyond the cell dtype's tolerance is where the cell departs:

    div = compare(reference, got, "float32")
    div.first.point.label   # "layer 3 attention output"
    div.summary()           # "layer 3 attention output: rel. error 0.05 > 0.001, cosine 0.9999998"

A pure scale error keeps the cosine at 1 and shows in the relative error; a rotation (a wrong
weight layout) drops the cosine: either trips. A fault in a norm shows at the block the norm feeds.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, final

import numpy as np

from harness.errors import ConfigError

MODULE_LABELS: Mapping[str, str] = {"attention": "attention output", "mlp": "MLP output", "moe": "MoE output",
                                    "layer": "output"}


@final
@dataclasses.dataclass(frozen=True)
class LayerPoint:
    """One probe point: ``3:attention`` is decoder layer 3's attention block; ``embeddings``, ``final:norm``."""

    name: str
    layer: int | None
    module: str

    @classmethod
    def parse(cls, name: str) -> LayerPoint:
        where, sep, module = name.partition(":")
        if sep and where.isdigit() and module:
            return cls(name, int(where), module)
        if name == "embeddings" or (sep and where == "final" and module):
            return cls(name, None, module or name)
        raise ValueError(f"probe point {name!r} is neither 'embeddings', 'LAYER:MODULE' (e.g. '3:attention') "
                         f"nor 'final:MODULE'")

    @property
    def label(self) -> str:
        """For people: ``layer 3 attention output``, ``layer 3 output``, ``embeddings``, ``final norm``."""
        if self.layer is None:
            return self.name.replace(":", " ")
        return f"layer {self.layer} {MODULE_LABELS.get(self.module, self.module + ' output')}"


@final
@dataclasses.dataclass(frozen=True)
class LayerStates:
    """Last-token hidden vectors of some prompts at every probe point, float32 ``[prompts, points, hidden]``."""

    points: tuple[LayerPoint, ...]
    values: np.ndarray
    prompts: tuple[str, ...]

    @classmethod
    def build(cls, names: Sequence[str], values: np.ndarray, prompts: Sequence[str]) -> LayerStates:
        """Validate that the array holds one vector per prompt and point."""
        arr = np.asarray(values, dtype=np.float32)
        points = tuple(LayerPoint.parse(n) for n in names)
        if arr.ndim != 3 or arr.shape[:2] != (len(prompts), len(points)):
            raise ValueError(f"layer states of shape {list(arr.shape)} do not hold [prompts={len(prompts)}, "
                             f"points={len(points)}, hidden] vectors")
        return cls(points, arr, tuple(prompts))

    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.points)


@final
@dataclasses.dataclass(frozen=True)
class LayerTolerance:
    """How far a probe point's output may depart from the reference's (float32 reference)."""

    max_rel_error: float
    min_cosine: float

    @classmethod
    def for_dtype(cls, dtype: str) -> LayerTolerance:
        """The tolerance of a cell dtype; an unknown dtype is refused with the known ones."""
        try:
            return LAYER_TOLERANCES[dtype]
        except KeyError:
            raise ConfigError(f"no layer tolerance for dtype {dtype!r}; known: {', '.join(LAYER_TOLERANCES)}") from None

    def text(self) -> str:
        return f"rel. error <= {self.max_rel_error:g}, cosine >= {self.min_cosine:g}"


# The one place per-dtype layer tolerances live (docs/numerics.md, "The first divergent layer").
# Measured on the tiny zoo (4 architectures, 3 prompts, every point), clean cells against hf-cpu float32:
# float32 0 (same kernels) | bfloat16 rel. error <= 1.6e-2, 1 - cosine <= 1.1e-4 | float16 <= 1.8e-3, 1.2e-6.
LAYER_TOLERANCES: Mapping[str, LayerTolerance] = {
    "float32": LayerTolerance(max_rel_error=1e-3, min_cosine=0.99999),
    "bfloat16": LayerTolerance(max_rel_error=0.05, min_cosine=0.999),
    "float16": LayerTolerance(max_rel_error=1e-2, min_cosine=0.9999),
}


@final
@dataclasses.dataclass(frozen=True)
class PointDiff:
    """One probe point's worst departure over the prompts."""

    point: LayerPoint
    rel_error: float
    cosine: float
    max_abs: float
    ok: bool

    def text(self, tol: LayerTolerance) -> str:
        """``layer 3 attention output: rel. error 0.05 > 0.001, cosine 0.9999998``."""
        over = self.rel_error > tol.max_rel_error
        rel = f"rel. error {self.rel_error:.3g}" + (f" > {tol.max_rel_error:g}" if over else "")
        cos = f"cosine {self.cosine:.7g}" + (f" < {tol.min_cosine:g}" if self.cosine < tol.min_cosine else "")
        return f"{self.point.label}: {rel}, {cos}"

    def row(self) -> dict[str, Any]:
        return {"point": self.point.label, "layer": self.point.layer, "module": self.point.module,
                "rel_error": _round(self.rel_error), "cosine": _round(self.cosine, 9), "max_abs": _round(self.max_abs),
                "within_tolerance": self.ok}


@final
@dataclasses.dataclass(frozen=True)
class LayerDivergence:
    """Every probe point compared, in forward order, and the first one beyond tolerance."""

    diffs: tuple[PointDiff, ...]
    dtype: str
    tolerance: LayerTolerance
    prompts: int = 0  # how many prompts each point was judged over

    @property
    def first(self) -> PointDiff | None:
        return next((d for d in self.diffs if not d.ok), None)

    def summary(self) -> str:
        """Where it departs, or that nothing does (with the closest point)."""
        first = self.first
        if first is not None:
            return first.text(self.tolerance)
        worst = max(self.diffs, key=lambda d: d.rel_error / self.tolerance.max_rel_error, default=None)
        if worst is None or (worst.rel_error == 0.0 and worst.max_abs == 0.0):
            closest = f"; all {len(self.diffs)} points equal"
        else:
            closest = f"; closest {worst.text(self.tolerance)}"
        return f"no layer departs beyond {self.dtype} tolerance ({self.tolerance.text()}){closest}"

    def rows(self, around: int = 3, most: int = 12) -> list[dict[str, Any]]:
        """The points around the first departure (``around`` before it, the rest after), at most ``most``."""
        first = self.first
        start = max(0, self.diffs.index(first) - around) if first is not None else 0
        return [d.row() for d in self.diffs[start:start + most]]


def compare(reference: LayerStates, got: LayerStates, dtype: str) -> LayerDivergence:
    """Judge ``got`` point by point against ``reference`` (same prompts, points in the reference's order)."""
    if reference.prompts != got.prompts:
        raise ValueError(f"layer states of different prompts: reference {list(reference.prompts)}, "
                         f"cell {list(got.prompts)}")
    index = {p.name: i for i, p in enumerate(got.points)}
    common = [(i, p) for i, p in enumerate(reference.points) if p.name in index]
    if not common:
        raise ValueError(f"no probe point in common: reference {list(reference.names())}, cell {list(got.names())}")
    tol = LayerTolerance.for_dtype(dtype)
    diffs = []
    for i, point in common:
        rel, cos, mx = _departure(reference.values[:, i, :], got.values[:, index[point.name], :])
        diffs.append(PointDiff(point, rel, cos, mx, rel <= tol.max_rel_error and cos >= tol.min_cosine))
    return LayerDivergence(tuple(diffs), dtype, tol, len(got.prompts))


def _departure(ref: np.ndarray, got: np.ndarray) -> tuple[float, float, float]:
    """Worst relative error, worst cosine and max |Δ| over the prompts (rows), in float64."""
    if ref.shape != got.shape:
        return math.inf, 0.0, math.inf
    a, b = ref.astype(np.float64), got.astype(np.float64)
    if not np.isfinite(b).all():
        return math.inf, 0.0, math.inf
    diff = np.linalg.norm(b - a, axis=-1)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    rel = np.where(na > 0, diff / np.where(na > 0, na, 1.0), np.where(diff > 0, np.inf, 0.0))
    both = na * nb
    cos = np.where(both > 0, np.sum(a * b, axis=-1) / np.where(both > 0, both, 1.0), np.where(diff > 0, 0.0, 1.0))
    return float(rel.max()), float(np.clip(cos, -1.0, 1.0).min()), float(np.abs(b - a).max())


def _round(value: float, digits: int = 6) -> float:
    return value if not math.isfinite(value) else float(f"{value:.{digits}g}")
