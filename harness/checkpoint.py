"""Read tensors from safetensors checkpoints with numpy alone (no torch in the harness process)."""
from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.errors import ConfigError

_NUMPY_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}


class Checkpoint:
    """All safetensors shards of a checkpoint directory, read lazily by tensor name."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._index: dict[str, tuple[Path, dict]] = {}
        files = sorted(directory.glob("*.safetensors"))
        if not files:
            raise ConfigError(f"no *.safetensors file in {directory}; point the model card at a safetensors checkpoint")
        for f in files:
            header, _ = _read_header(f)
            for name, meta in header.items():
                if name != "__metadata__":
                    self._index[name] = (f, meta)

    def names(self) -> list[str]:
        return sorted(self._index)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._index[name][1]["shape"])

    def dtype(self, name: str) -> str:
        return str(self._index[name][1]["dtype"])

    def read(self, name: str, rows: int | None = None) -> np.ndarray:
        """The tensor as float32 (bf16 widened exactly); ``rows`` keeps only the first rows."""
        path, meta = self._index[name]
        _, data_start = _read_header(path)
        begin, end = meta["data_offsets"]
        shape = tuple(meta["shape"])
        with path.open("rb") as fh:
            fh.seek(data_start + begin)
            raw = fh.read(end - begin)
        arr = _decode(raw, meta["dtype"], shape, f"{path}:{name}")
        if rows is not None and arr.ndim >= 1:
            arr = arr[:rows]
        return arr

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _read_header(path: Path) -> tuple[dict, int]:
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
    return header, 8 + length


def _decode(raw: bytes, dtype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    if dtype == "BF16":
        u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return u16.view(np.float32).reshape(shape)
    if dtype not in _NUMPY_DTYPES:
        raise ConfigError(f"{where}: tensor dtype {dtype} is not supported; known: BF16, {', '.join(_NUMPY_DTYPES)}")
    arr = np.frombuffer(raw, dtype=np.dtype(_NUMPY_DTYPES[dtype]).newbyteorder("<")).reshape(shape)
    return arr.astype(np.float32) if arr.dtype.kind == "f" else arr
