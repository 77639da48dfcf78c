"""Tensors as stored: safetensors dtype names, bytes to numpy without copies, bf16 kept in 16 bits.

numpy has no bfloat16, so a bf16 tensor is held in a one-field structured dtype ``BF16`` (its
16-bit pattern) that slicing, indexing and transposing treat like any other dtype; ``widen``
turns it into float32 exactly when values are needed, ``bits`` gives the raw pattern for a
bitwise comparison. The harness never holds a bf16 tensor widened as a whole.

    arr = from_bytes(buf, "BF16", (2, 3))   # a view of buf, dtype BF16
    widen(arr[:, 1:])                       # float32 copy of that slice only
"""
from __future__ import annotations

from typing import Any

import numpy as np

BF16 = np.dtype([("bf16", "<u2")])
_BY_NAME: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": BF16,
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_UNSIGNED: dict[int, np.dtype[Any]] = {1: np.dtype("u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<u8")}
DTYPE_NAMES = tuple(_BY_NAME)


class UnknownDtype(ValueError):
    """A dtype name this module cannot decode."""


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype holding safetensors dtype ``name`` (``BF16`` → the 16-bit marker dtype)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownDtype(f"tensor dtype {name!r} is not supported; known: {', '.join(DTYPE_NAMES)}") from None


def dtype_name(dtype: np.dtype) -> str:
    """The safetensors name of a numpy dtype (inverse of numpy_dtype, byte order ignored)."""
    dtype = np.dtype(dtype)
    for name, known in _BY_NAME.items():
        if dtype == known or (dtype.names is None and known.names is None and dtype.newbyteorder("<") == known):
            return name
    raise UnknownDtype(f"numpy dtype {dtype} has no safetensors name; known: {', '.join(DTYPE_NAMES)}")


def from_bytes(buf: bytes | bytearray | memoryview | np.ndarray, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A view of ``buf`` as a tensor of dtype ``name`` and ``shape`` (no copy)."""
    dtype = numpy_dtype(name)
    arr = np.frombuffer(buf, dtype=dtype)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if arr.size != count:
        raise ValueError(f"{arr.size * dtype.itemsize} bytes do not hold a {name} tensor of shape {list(shape)} "
                         f"({count * dtype.itemsize} bytes)")
    return arr.reshape(shape)


def is_float(arr: np.ndarray) -> bool:
    return arr.dtype == BF16 or arr.dtype.kind == "f"


def widen(arr: np.ndarray) -> np.ndarray:
    """Values as float32 (bf16 exactly, floats cast), or the array itself for other dtypes."""
    if arr.dtype == BF16:
        return (arr.view("<u2").astype(np.uint32) << 16).view(np.float32)
    if arr.dtype.kind == "f" and arr.dtype != np.float32:
        return arr.astype(np.float32)
    return arr


def bits(arr: np.ndarray) -> np.ndarray:
    """The raw bit patterns of ``arr`` as unsigned integers of the same width (a view)."""
    return arr.view(_UNSIGNED[arr.dtype.itemsize])


def same_storage(a: np.ndarray, b: np.ndarray) -> bool:
    """True when both hold the same dtype, so equal bit patterns mean equal values."""
    return a.dtype == b.dtype
