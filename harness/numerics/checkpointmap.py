"""Checkpoint tensors read in place: each safetensors file mapped once, read-only, no copy.

A tensor is a view of the page cache (``view``); after every 64 MB of tensors compared
(``release``), the pages mapped so far are dropped from this process (``MADV_DONTNEED``: the
page cache keeps them, and a later read of a view maps them again, so a view never becomes
invalid), so the process holds at most about 64 MB + one tensor of the checkpoint. Where ``mmap.madvise`` is missing, ``available`` is False
and the caller reads into a buffer instead (harness/checks/weight_stream.py ``ReadBuffer``).

    with CheckpointMap(ckpt) as maps:
        want = maps.view(name)      # np.ndarray in the stored dtype, read-only
        ...                         # compare
        maps.release(name)
"""
from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np

from harness.errors import ConfigError
from harness.numerics.checkpoint import Checkpoint

DROP_BYTES = 64 << 20  # the most checkpoint bytes mapped in this process, besides the tensor being compared


class CheckpointMap:
    """One read-only mapping per safetensors file of a checkpoint, opened on first use."""

    available = hasattr(mmap.mmap, "madvise") and hasattr(mmap, "MADV_DONTNEED")

    def __init__(self, ckpt: Checkpoint) -> None:
        self.ckpt = ckpt
        self._maps: dict[Path, mmap.mmap] = {}
        self._since = 0

    def view(self, name: str, rows: int | None = None) -> np.ndarray:
        """The tensor (first ``rows`` rows) in its stored dtype, a view of the file's pages."""
        path, offset, nbytes, dtype, shape = self.ckpt.extent(name, rows)
        mm = self._map(path)
        if offset + nbytes > len(mm):
            raise ConfigError(f"{path}:{name}: file ends before byte {offset + nbytes}; the checkpoint is truncated")
        return np.frombuffer(mm, dtype=np.uint8, count=nbytes, offset=offset).view(dtype).reshape(shape)

    def release(self, name: str, rows: int | None = None) -> None:
        """Done with tensor ``name``: once ``DROP_BYTES`` were released, every mapped page is dropped
        from this process (views stay valid). Whole mappings rather than the tensor's own range:
        the kernel maps pages around a fault (fault-around, large folios), beyond any one tensor."""
        self._since += self.ckpt.extent(name, rows)[2]
        if self._since >= DROP_BYTES:
            self.drop()

    def drop(self) -> None:
        """Drop every page this process has mapped from the checkpoint (the page cache keeps them)."""
        for mm in self._maps.values():
            mm.madvise(mmap.MADV_DONTNEED, 0, len(mm))
        self._since = 0

    def close(self) -> None:
        """Forget the mappings; each is unmapped once no view of it is left."""
        self._maps.clear()

    def __enter__(self) -> CheckpointMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _map(self, path: Path) -> mmap.mmap:
        mm = self._maps.get(path)
        if mm is None:
            with path.open("rb") as fh:
                mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps[path] = mm
        return mm

