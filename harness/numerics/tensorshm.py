"""A shared-memory region the runtime writes tensors into and the harness reads where they lie.

The harness makes one sparse file in the cell's transfer directory (tmpfs, harness/boot/xferdir.py),
maps it read-only and, per request, offers the runtime its free ranges, lowest first, as
``{"path", "token", "gaps": [[offset, capacity], ...]}``. A runtime on the same host opens the
file once, checks the random token written at offset 0 (so a path that names another file on a
remote host is never written to), ``pwrite``s the tensor's bytes into the first range that fits
(a full tmpfs gives ENOSPC, never SIGBUS) and answers with dtype, shape, offset and length only:
one copy in the runtime, none in the harness. A range is free again when the last numpy array
viewing it is gone (``weakref.finalize`` on the base view), so a tensor can never be overwritten
while anything still reads it. The file is unlinked as soon as the runtime holds it open: a crash
leaves no file behind.

    region = Region.create(xfer_dir)
    offer = region.reserve()                    # its free ranges go with the request
    base = region.claim(offer, offset, nbytes)  # where the runtime wrote: a uint8 view, freed with its views
"""
from __future__ import annotations

import dataclasses
import mmap
import os
import secrets
import threading
import weakref
from pathlib import Path
from typing import final

import numpy as np

ALIGN = 4096
TOKEN_BYTES = 16
MAX_GAPS = 32
MAX_CAPACITY = 8 << 30  # virtual; tmpfs pages exist only where tensors were written


@final
@dataclasses.dataclass(frozen=True)
class Offer:
    """The free ranges of the region, lowest first, reserved for one request until claimed or cancelled."""

    gaps: tuple[tuple[int, int], ...]  # (offset, capacity)

    def as_request(self, region: Region) -> dict[str, object]:
        return {"path": str(region.path), "token": region.token.hex(), "gaps": [list(g) for g in self.gaps]}

    def holds(self, offset: int, nbytes: int) -> bool:
        return any(start <= offset and offset + nbytes <= start + cap for start, cap in self.gaps)


class Region:
    """The harness's side of the region: the mapping and which ranges are in use.

    Free ranges are offered lowest first and the runtime takes the first that fits, so the pages
    ever written stay near the start: about the most bytes in use at once, not the checkpoint.
    One request holds the offer at a time; a second one meanwhile gets None (and uses the socket).
    """

    def __init__(self, path: Path, size: int, token: bytes, mm: mmap.mmap) -> None:
        self.path, self.size, self.token = path, size, token
        self._mm: mmap.mmap | None = mm
        self._used: dict[int, int] = {0: ALIGN}  # offset -> end; the token's page
        self._offered = False
        self._lock = threading.Lock()
        self.unlinked = False

    @classmethod
    def create(cls, directory: Path, capacity: int | None = None) -> Region:
        """A new sparse region file in ``directory``: half the tmpfs's free space, at most 8 GiB."""
        st = os.statvfs(directory)
        size = capacity or min(MAX_CAPACITY, st.f_bavail * st.f_frsize // 2)
        size -= size % ALIGN
        if size < 2 * ALIGN:
            raise OSError(f"{directory}: only {st.f_bavail * st.f_frsize} bytes free on its tmpfs")
        token = secrets.token_bytes(TOKEN_BYTES)
        path = directory / f"region-{os.getpid()}-{token[:4].hex()}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            os.pwrite(fd, token, 0)
            mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        return cls(path, size, token, mm)

    def reserve(self) -> Offer | None:
        """Every free range, lowest first; None when closed, full, or another request holds them."""
        with self._lock:
            if self._mm is None or self._offered:
                return None
            gaps, prev_end = [], 0
            for start in sorted(self._used):
                if start > prev_end:
                    gaps.append((prev_end, start - prev_end))
                prev_end = max(prev_end, self._used[start])
            gaps = gaps[:MAX_GAPS - 1]  # the request stays small; the tail is always offered
            if self.size > prev_end:
                gaps.append((prev_end, self.size - prev_end))
            if not gaps:
                return None
            self._offered = True
            return Offer(tuple(gaps))

    def claim(self, offer: Offer, offset: int, nbytes: int) -> np.ndarray:
        """The ``nbytes`` the runtime wrote at ``offset`` (inside the offer) as a read-only uint8
        view; its range is free again once that view and every view of it are gone."""
        with self._lock:
            self._offered = False
            mm = self._mm
            if not offer.holds(offset, nbytes) or mm is None:
                raise ValueError(f"the runtime wrote {nbytes} bytes at {offset}, outside the ranges offered "
                                 f"{list(offer.gaps)[:4]}" if mm is not None else "the region was closed meanwhile")
            self._used[offset] = offset + _aligned(max(nbytes, 1))
        base = np.frombuffer(mm, dtype=np.uint8, count=nbytes, offset=offset)
        weakref.finalize(base, self._free, offset)
        return base

    def cancel(self, offer: Offer) -> None:
        """The request did not use the region (it answered over the socket, or failed)."""
        with self._lock:
            self._offered = False

    def _free(self, offset: int) -> None:
        """The range is free again; its pages leave this process's page tables (they stay in tmpfs
        for the runtime to reuse), so the harness holds resident only the tensors it still views."""
        with self._lock:
            end = self._used.pop(offset, None)
            mm = self._mm
            if end is not None and mm is not None and end > offset:
                try:
                    mm.madvise(mmap.MADV_DONTNEED, offset, end - offset)
                except (OSError, ValueError):
                    pass  # only memory stays mapped longer

    def unlink(self) -> None:
        """Remove the file (the runtime holds it open; the memory stays while either maps it)."""
        if not self.unlinked:
            self.path.unlink(missing_ok=True)
            self.unlinked = True

    def close(self) -> None:
        """Unlink and drop this side's mapping; views still alive keep it until they go."""
        self.unlink()
        with self._lock:
            self._mm = None

    @property
    def in_use(self) -> int:
        """Bytes held by live views (the token's page not counted)."""
        with self._lock:
            return sum(end - start for start, end in self._used.items()) - ALIGN


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN
