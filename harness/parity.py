"""Numeric parity maths on numpy arrays: per-tensor error figures and verdicts."""
from __future__ import annotations

import dataclasses
from typing import final

import numpy as np

from harness.cards import Tolerance


@final
@dataclasses.dataclass(frozen=True)
class TensorParity:
    """How far the runtime's tensor is from the checkpoint's."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    cosine: float
    frac_outside: float
    ok: bool
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        return d


def compare(name: str, got: np.ndarray, want: np.ndarray, tol: Tolerance) -> TensorParity:
    """Compare two arrays; a shape mismatch is a failure with max errors set to inf.

    >>> from harness.cards import Tolerance
    >>> compare("w", np.ones(3), np.ones(3), Tolerance(0, 0)).ok
    True
    """
    if got.shape != want.shape:
        return TensorParity(name, tuple(want.shape), float("inf"), float("inf"), float("nan"), 1.0, False,
                            f"shape {tuple(got.shape)} != checkpoint {tuple(want.shape)}")
    a = got.astype(np.float64, copy=False)
    b = want.astype(np.float64, copy=False)
    diff = np.abs(a - b)
    if diff.size == 0:
        return TensorParity(name, tuple(want.shape), 0.0, 0.0, 1.0, 0.0, True)
    finite = np.isfinite(a).all()
    max_abs = float(diff.max())
    denom = np.abs(b)
    rel = np.divide(diff, denom, out=np.where(diff > 0, np.inf, 0.0), where=denom > 0)
    outside = diff > (tol.atol + tol.rtol * denom)
    return TensorParity(
        name=name,
        shape=tuple(want.shape),
        max_abs=max_abs,
        max_rel=float(rel.max()),
        cosine=_cosine(a, b),
        frac_outside=float(outside.mean()),
        ok=bool(finite and not outside.any()),
        note="" if finite else "non-finite values",
    )


def worst_first(results: list[TensorParity]) -> list[TensorParity]:
    """Failures first, then by fraction outside tolerance and max abs error, largest first."""
    return sorted(results, key=lambda r: (r.ok, -r.frac_outside, -_num(r.max_abs)))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a.ravel(), b.ravel()) / (na * nb))


def _num(x: float) -> float:
    return x if np.isfinite(x) else 1e300
