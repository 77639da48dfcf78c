"""Checkpoint tensors read in place: each safetensors file mapped once, read-only, no copy.

A tensor is a view of the page cache (``view``); once compared, ``release`` drops its pages
from this process (``MADV_DONTNEED``: the page cache keeps them, and a later read of the view
maps them again, so a view never becomes invalid), so the process holds about one tensor's pages
at a time however large the checkpoint. Where ``mmap.madvise`` is missing, ``available`` is False
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

from harness.checkpoint import Checkpoint
from harness.errors import ConfigError


class CheckpointMap:
    """One read-only mapping per safetensors file of a checkpoint, opened on first use."""

    available = hasattr(mmap.mmap, "madvise") and hasattr(mmap, "MADV_DONTNEED")

    def __init__(self, ckpt: Checkpoint) -> None:
        self.ckpt = ckpt
        self._maps: dict[Path, mmap.mmap] = {}

    def view(self, name: str, rows: int | None = None) -> np.ndarray:
        """The tensor (first ``rows`` rows) in its stored dtype, a view of the file's pages."""
        path, offset, nbytes, dtype, shape = self.ckpt.extent(name, rows)
        mm = self._map(path)
        if offset + nbytes > len(mm):
            raise ConfigError(f"{path}:{name}: file ends before byte {offset + nbytes}; the checkpoint is truncated")
        return np.frombuffer(mm, dtype=np.uint8, count=nbytes, offset=offset).view(dtype).reshape(shape)

    def release(self, name: str, rows: int | None = None) -> None:
        """Drop the pages of tensor ``name`` from this process; views of it stay valid."""
        path, offset, nbytes, _, _ = self.ckpt.extent(name, rows)
        mm = self._maps.get(path)
        if mm is None or not nbytes:
            return
        lo = offset - offset % mmap.PAGESIZE
        mm.madvise(mmap.MADV_DONTNEED, lo, min(len(mm), offset + nbytes) - lo)

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

