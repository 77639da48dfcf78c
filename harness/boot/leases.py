"""Device and port leases through file locks: one runtime per card, released even on a crash.

Each card is a lock file ``<dir>/<device>/<index>.lock`` held with ``flock`` for the life of a
cell; the kernel drops the lock when the holder dies, so a killed run leaves no stale lease.
Every acquire and release is appended to an events file so tests can prove no overlap.

Port lock files ``<dir>/ports/<port>.lock`` do not pile up: the holder deletes its file on
release while it still holds the lock, and a lock counts only if the file locked is still the
one at the path (a process that opened the file before it was deleted and locked it after finds
a different inode there, or none, and tries again). Files left by a killed holder are deleted by
the next port lease. Card lock files are a fixed pool, one per card.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, final

from harness.errors import HarnessError

DEFAULT_LEASE_DIR = Path(os.environ.get("HARNESS_LEASE_DIR", "/tmp/llm-harness-leases"))


def card_lease_dir(out_dir: Path, lease_dir: Path | None, simulated: bool) -> Path:
    """Where cards are leased: simulated ones inside the run (``out_dir/.leases``), real ones host-wide
    (``lease_dir``, else DEFAULT_LEASE_DIR), so every process on the host sees the same cards taken."""
    return out_dir / ".leases" if simulated else (lease_dir or DEFAULT_LEASE_DIR)


class LeaseTimeout(HarnessError):
    """Not enough free cards within the wait limit."""


@final
@dataclasses.dataclass
class Lease:
    """Cards held by one cell; ``release()`` is idempotent."""

    device: str
    cards: tuple[int, ...]
    holder: str
    _files: list[IO[bytes]]
    _log: Path | None

    def release(self) -> None:
        if not self._files:
            return
        log_event(self._log, "release", self.holder, self.device, self.cards)  # before unlocking: no false overlap
        for fh in self._files:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
        self._files = []


def acquire(device: str, count: int, total: int, holder: str, *, lease_dir: Path = DEFAULT_LEASE_DIR,
            events: Path | None = None, timeout_s: float = 3600.0, poll_s: float = 0.2) -> Lease:
    """Hold ``count`` of the ``total`` cards of ``device``, waiting until enough are free."""
    if count > total:
        raise LeaseTimeout(f"{holder} needs {count} {device} cards but only {total} exist; lower tp or add cards")
    folder = lease_dir / device
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        held = _try_take(folder, count, total)
        if held is not None:
            cards = tuple(i for i, _ in held)
            for _, fh in held:
                fh.seek(0)
                fh.truncate()
                fh.write(json.dumps({"holder": holder, "pid": os.getpid(), "since": time.time()}).encode())
                fh.flush()
            log_event(events, "acquire", holder, device, cards)
            return Lease(device, cards, holder, [fh for _, fh in held], events)
        if time.monotonic() > deadline:
            raise LeaseTimeout(f"{holder} waited {timeout_s:.0f}s for {count} free {device} card(s) in {folder}")
        time.sleep(poll_s)


def _try_lock(path: Path) -> IO[bytes] | None:
    """The open lock file, exclusively locked, or None when another process holds it."""
    fh = open(path, "a+b")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    if not _still_linked(fh, path):  # deleted (and maybe re-created) by its holder's release meanwhile
        fh.close()
        return None
    return fh


def _still_linked(fh: IO[bytes], path: Path) -> bool:
    """True when ``path`` is still the file ``fh`` has open (not deleted or replaced since it was opened)."""
    try:
        here, there = os.fstat(fh.fileno()), os.stat(path)
    except OSError:
        return False
    return (here.st_ino, here.st_dev) == (there.st_ino, there.st_dev)


def _unlink_locked(fh: IO[bytes], path: Path) -> None:
    """Delete a lock file we hold, then let it go: whoever opened it meanwhile sees it is gone."""
    try:
        path.unlink(missing_ok=True)
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def sweep_port_locks(folder: Path) -> int:
    """Delete the port lock files no process holds (left by killed holders); returns how many."""
    removed = 0
    for path in folder.glob("*.lock"):
        try:
            fh = _try_lock(path)
        except OSError:
            continue
        if fh is not None:
            _unlink_locked(fh, path)
            removed += 1
    return removed


def _try_take(folder: Path, count: int, total: int) -> list[tuple[int, IO[bytes]]] | None:
    held: list[tuple[int, IO[bytes]]] = []
    for index in range(total):
        fh = _try_lock(folder / f"{index}.lock")
        if fh is None:
            continue
        held.append((index, fh))
        if len(held) == count:
            return held
    for _, fh in held:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
    return None


class PortLease:
    """A free TCP port that no other harness process on this host will hand out meanwhile."""

    def __init__(self, host: str = "127.0.0.1", *, lease_dir: Path = DEFAULT_LEASE_DIR, tries: int = 50) -> None:
        folder = lease_dir / "ports"
        folder.mkdir(parents=True, exist_ok=True)
        sweep_port_locks(folder)
        self._fh: IO[bytes] | None = None
        self._path: Path | None = None
        for _ in range(tries):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = int(s.getsockname()[1])
            fh = _try_lock(folder / f"{port}.lock")
            if fh is not None:
                self.port, self._fh, self._path = port, fh, folder / f"{port}.lock"
                return
        raise HarnessError(f"could not lease a free port on {host} after {tries} tries; is {folder} shared by a stuck run?")

    def release(self) -> None:
        """Give the port back and delete its lock file (idempotent)."""
        if self._fh is not None and self._path is not None:
            fh, self._fh = self._fh, None
            _unlink_locked(fh, self._path)


def log_event(path: Path | None, event: str, holder: str, device: str, cards: Sequence[int]) -> None:
    """Append one lease event (a single write under flock, so lines never interleave)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"t": time.time(), "event": event, "cell": holder, "device": device,
                       "cards": list(cards), "pid": os.getpid()}) + "\n"
    with open(path, "ab") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(line.encode())
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_UN)


def overlaps(events: list[dict]) -> list[str]:
    """Cards held by two holders at once, from an events log (empty when leasing was sound)."""
    holders: dict[tuple[str, int], str] = {}
    problems = []
    for e in sorted(events, key=lambda e: (e["t"], e["event"] == "acquire")):
        for card in e["cards"]:
            key = (e["device"], card)
            if e["event"] == "acquire":
                if key in holders:
                    problems.append(f"{e['device']}:{card} taken by {e['cell']} while held by {holders[key]}")
                holders[key] = e["cell"]
            elif holders.get(key) == e["cell"]:
                del holders[key]
    return problems
