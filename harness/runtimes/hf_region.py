"""The runtime's side of the shared-memory tensor region (the harness's side: harness/numerics/tensorshm.py).

Imports nothing from the harness (hf_server.py runs in the runtime's own interpreter). A request
offers ``{"path", "token", "gaps": [[offset, capacity], ...]}``; the writer opens the path once
(kept open: the harness unlinks the file after the first answer), checks that the file starts
with the token, and ``pwrite``s the tensor's bytes into the first gap that fits. Anything that
does not work out (another host, a full tmpfs, no gap large enough) returns None, and the server
sends the bytes over the socket instead.
"""
from __future__ import annotations

import os
import sys
import threading


class RegionWriter:
    """One open region file at a time (the latest path offered)."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.fd: int | None = None
        self.lock = threading.Lock()
        self.warned = False

    def write(self, offer: object, data: memoryview) -> int | None:
        """The offset ``data`` was written at, or None (then send it over the socket)."""
        if not isinstance(offer, dict):
            return None
        offset = _first_fit(offer.get("gaps"), len(data))
        if offset is None:
            return None
        with self.lock:
            try:
                fd = self._open(str(offer.get("path")), str(offer.get("token")))
                if fd is None:
                    return None
                done = 0
                while done < len(data):
                    done += os.pwrite(fd, data[done:], offset + done)
            except (OSError, ValueError) as exc:
                self._warn(f"cannot write into the shared-memory region, using the socket: {exc}")
                return None
        return offset

    def release(self, path: str) -> bool:
        """Close the region ``path`` (the harness is done with it); False when it was not open."""
        with self.lock:
            if self.path != path or self.fd is None:
                return False
            os.close(self.fd)
            self.path, self.fd = None, None
            return True

    def _open(self, path: str, token: str) -> int | None:
        if path == self.path and self.fd is not None:
            return self.fd
        if len(token) < 32:
            return None
        fd = os.open(path, os.O_RDWR) if os.path.isfile(path) else None
        if fd is None:
            return None  # not on this host (a remote runtime): the socket it is
        if os.pread(fd, len(token) // 2, 0) != bytes.fromhex(token):
            os.close(fd)
            self._warn(f"{path} does not start with the token offered: not writing into it")
            return None
        if self.fd is not None:
            os.close(self.fd)
        self.path, self.fd = path, fd
        return fd

    def _warn(self, message: str) -> None:
        if not self.warned:
            print(f"[hf_server] {message}", file=sys.stderr, flush=True)
            self.warned = True


def _first_fit(gaps: object, nbytes: int) -> int | None:
    """The offset of the first ``[offset, capacity]`` gap holding ``nbytes``."""
    for gap in gaps if isinstance(gaps, list) else ():
        if isinstance(gap, list) and len(gap) == 2 and int(gap[1]) >= nbytes:
            return int(gap[0])
    return None
