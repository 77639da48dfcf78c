"""Error figures of two same-shape tensors, computed in bounded chunks.

Two passes at most: a bitwise pass (``got`` and ``want`` stored alike, e.g. float32 against
float32 or bf16 against bf16) settles the usual case, equal bits, with one comparison and one
finiteness test per element; only a tensor that differs somewhere is walked again in float64
for its figures. Either way no temporary is larger than a chunk (``CHUNK_ELEMENTS``).

Where both arrays are contiguous the bitwise pass makes no temporaries at all: the bytes are
compared with libc ``memcmp`` (ctypes; the GIL is released meanwhile), and finiteness is read off
a sum (any NaN or infinity makes a float sum non-finite; only a non-finite sum, e.g. an overflow,
is checked element by element) or, for bf16, off the largest exponent field.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import final

import numpy as np

from harness.config.cards import Tolerance
from harness.numerics.tensors import BF16, bits, is_float, same_storage, widen

CHUNK_ELEMENTS = 1 << 20


@final
@dataclasses.dataclass(frozen=True)
class Figures:
    """max |got - want|, max relative error, cosine, fraction outside tolerance, max tolerance ratio."""

    max_abs: float
    max_rel: float
    cosine: float
    frac_outside: float
    finite: bool
    tol_ratio: float

    @property
    def ok(self) -> bool:
        return self.finite and self.frac_outside == 0.0


EXACT = Figures(0.0, 0.0, 1.0, 0.0, True, 0.0)


def figures(got: np.ndarray, want: np.ndarray, tol: Tolerance, *, want_finite: bool = False) -> Figures:
    """The figures of ``got`` against ``want`` (same shape; bf16 as harness.numerics.tensors.BF16).

    ``want_finite``: ``want`` is known to hold no NaN or infinity (harness/numerics/finitememo.py), so equal
    bytes need no finiteness pass."""
    if got.size == 0:
        return EXACT
    if same_storage(got, want) and _bitwise_equal(got, want, want_finite):
        return EXACT
    return _walk(got, want, tol)


def _chunks(got: np.ndarray, want: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Matching pieces of both arrays, about CHUNK_ELEMENTS each, split along the leading dims."""
    if got.ndim == 0:
        yield got.reshape(1), want.reshape(1)
        return
    inner = max(1, got.size // got.shape[0])
    if inner > CHUNK_ELEMENTS and got.ndim > 1:
        for i in range(got.shape[0]):
            yield from _chunks(got[i], want[i])
        return
    step = max(1, CHUNK_ELEMENTS // inner)
    for start in range(0, got.shape[0], step):
        yield got[start:start + step], want[start:start + step]


def _load_memcmp() -> Callable[[int, int, int], int] | None:
    """libc's memcmp, or None where ctypes cannot find it (then numpy compares, chunk by chunk)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        fn = libc.memcmp
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t], ctypes.c_int
    return fn


_MEMCMP = _load_memcmp()


def _bitwise_equal(got: np.ndarray, want: np.ndarray, want_finite: bool = False) -> bool:
    """Same bits everywhere and every value finite (a NaN equal to itself still fails); equal bytes
    are finite without a look when ``want`` is known finite."""
    if _MEMCMP is not None and got.flags.c_contiguous and want.flags.c_contiguous:
        if _MEMCMP(got.ctypes.data, want.ctypes.data, got.nbytes) != 0:
            return False
        return want_finite or _all_finite(got.reshape(-1))
    for g, w in _chunks(got, want):
        gb = bits(g)
        if not np.array_equal(gb, bits(w)) or not _finite(g, gb):
            return False
    return True


def _all_finite(flat: np.ndarray) -> bool:
    """Every value of a contiguous 1-D array finite, read without a temporary of its size."""
    if not is_float(flat):
        return True
    scratch = np.empty(min(flat.size, CHUNK_ELEMENTS), "<u2") if flat.dtype == BF16 else None
    for start in range(0, flat.size, CHUNK_ELEMENTS):
        part = flat[start:start + CHUNK_ELEMENTS]
        if scratch is not None:  # bf16: an exponent field of all ones is an infinity or a NaN
            field = np.bitwise_and(part.view("<u2"), 0x7F80, out=scratch[:part.size])
            if part.size and int(field.max()) == 0x7F80:
                return False
            continue
        with np.errstate(all="ignore"):
            total = np.add.reduce(part)
        if not np.isfinite(total) and not bool(np.isfinite(part).all()):
            return False
    return True


def _finite(g: np.ndarray, gb: np.ndarray) -> bool:
    if g.dtype == BF16:
        return not bool(((gb & 0x7F80) == 0x7F80).any())
    return bool(np.isfinite(g).all()) if g.dtype.kind == "f" else True


def _walk(got: np.ndarray, want: np.ndarray, tol: Tolerance) -> Figures:
    max_abs = max_rel = ratio = 0.0
    outside = 0
    dot = na = nb = 0.0
    finite = True
    for g, w in _chunks(got, want):
        a = widen(g).astype(np.float64)
        b = widen(w).astype(np.float64)
        finite = finite and bool(np.isfinite(a).all())
        diff = np.abs(a - b)
        denom = np.abs(b)
        allowed = tol.atol + tol.rtol * denom
        max_abs = _top(max_abs, float(diff.max()))
        max_rel = _top(max_rel, float(np.divide(diff, denom, out=np.where(diff > 0, np.inf, 0.0), where=denom > 0).max()))
        ratio = _top(ratio, float(np.divide(diff, allowed, out=np.where(diff > 0, np.inf, 0.0), where=allowed > 0).max()))
        outside += int(np.count_nonzero(diff > allowed))
        dot += float(np.dot(a.ravel(), b.ravel()))
        na += float(np.dot(a.ravel(), a.ravel()))
        nb += float(np.dot(b.ravel(), b.ravel()))
    return Figures(max_abs, max_rel, _cosine(dot, na, nb), outside / got.size, finite,
                   ratio if finite else float("inf"))


def _top(x: float, y: float) -> float:
    """The larger of two figures; NaN wins, as numpy's max does."""
    return x if math.isnan(x) else y if math.isnan(y) else max(x, y)


def _cosine(dot: float, na2: float, nb2: float) -> float:
    if na2 == 0.0 and nb2 == 0.0:
        return 1.0
    if na2 == 0.0 or nb2 == 0.0:
        return 0.0
    return dot / (math.sqrt(na2) * math.sqrt(nb2))
