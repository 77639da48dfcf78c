"""Read tensors from safetensors checkpoints with numpy alone (no torch in the harness process)."""
from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.errors import ConfigError
from harness.numerics.tensors import UnknownDtype, numpy_dtype, widen


class Checkpoint:
    """All safetensors shards of a checkpoint directory, read lazily by tensor name."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._index: dict[str, tuple[Path, dict, int]] = {}
        files = sorted(directory.glob("*.safetensors"))
        if not files:
            raise ConfigError(f"no *.safetensors file in {directory}; point the model card at a safetensors checkpoint")
        for f in files:
            header, data_start = _read_header(f)
            for name, meta in header.items():
                if name != "__metadata__":
                    self._index[name] = (f, meta, data_start)

    def names(self) -> list[str]:
        return sorted(self._index)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._index[name][1]["shape"])

    def dtype(self, name: str) -> str:
        return str(self._index[name][1]["dtype"])

    def nbytes(self, name: str) -> int:
        begin, end = self._index[name][1]["data_offsets"]
        return int(end - begin)

    def files(self) -> list[Path]:
        return sorted({f for f, _, _ in self._index.values()})

    def extent(self, name: str, rows: int | None = None) -> tuple[Path, int, int, np.dtype, tuple[int, ...]]:
        """Where the tensor's bytes are: file, byte offset in it, length, numpy dtype, shape
        (``rows``: only the first rows)."""
        path, meta, data_start = self._index[name]
        shape = tuple(meta["shape"])
        try:
            dtype = numpy_dtype(meta["dtype"])
        except UnknownDtype as exc:
            raise ConfigError(f"{path}:{name}: {exc}") from None
        begin, end = meta["data_offsets"]
        if rows is not None and shape:
            shape = (min(rows, shape[0]), *shape[1:])
            end = begin + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        return path, data_start + begin, end - begin, dtype, shape

    def view(self, name: str, rows: int | None = None, into: np.ndarray | None = None) -> np.ndarray:
        """The tensor in its stored dtype (bf16 as harness.numerics.tensors.BF16), read with one copy into a
        fresh buffer or into the uint8 buffer ``into`` (reused: the tensor lives until its next
        use); ``rows`` reads only the first rows."""
        path, offset, length, dtype, shape = self.extent(name, rows)
        buf = into[:length] if into is not None and len(into) >= length else np.empty(length, np.uint8)
        with path.open("rb", buffering=0) as fh:
            fh.seek(offset)
            got = fh.readinto(buf.data)
        if got != length:
            raise ConfigError(f"{path}:{name}: file ends after {got} of {length} bytes; the checkpoint is truncated")
        return buf.view(dtype).reshape(shape)

    def read(self, name: str, rows: int | None = None) -> np.ndarray:
        """The tensor as float32 (bf16 widened exactly); ``rows`` keeps only the first rows."""
        return widen(self.view(name, rows))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _read_header(path: Path) -> tuple[dict, int]:
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
    return header, 8 + length
