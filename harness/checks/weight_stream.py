"""Runtime tensors as a bounded stream for weight parity: fetched once, one ahead, few held.

Weight parity walks the checkpoint in the order of the runtime tensors that hold it
(``plan``: each runtime name once). While the check compares the members of one runtime tensor,
a single background thread already fetches the next ones in the plan, back to back, so the
transfer overlaps layout and comparison and the runtime never waits for the harness to ask; every
fetch goes through that one thread, so the runtime's connection is never used twice at once. How
far it runs ahead is bounded by the planned tensors' sizes (``sizes``, known from the checkpoint):
``ahead`` bytes, and always the next two tensors (with one, the runtime sat idle while the harness
compared a 134 MB expert stack). Held tensors are dropped oldest first down to ``budget`` bytes
before each new one is taken, so at any moment this holds at most ``budget`` + the current tensor
+ ``ahead`` bytes or the next two tensors (the ones ahead, up to 256 MB or 2 x the largest runtime
tensor, are written by the runtime and not yet read here: they are in tmpfs, not in this process's
resident memory; where tmpfs has no room the runtime answers over the socket instead). A small
footprint is also a fast one: the shared-memory region's pages are reused lowest first, and every
page never written before costs the runtime an allocation.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np

PASSES = ("transfer", "checkpoint_read", "layout", "compare")
FETCH_BUDGET_BYTES = 0  # tensors kept after the comparison moved on: none (members of one runtime tensor are consecutive)
AHEAD_BYTES = 256 << 20  # fetched ahead of the comparison, into tmpfs: the runtime copies while the harness compares
AHEAD_MIN = 2  # and always the next two, so the runtime is never idle behind one large stack
AHEAD_MAX = 16
Getter = Callable[[str], "np.ndarray | None"]
T = TypeVar("T")


class PassClock:
    """Seconds the check spent in each pass over the data (transfer: waiting for a tensor)."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PASSES, 0.0)

    def timed(self, what: str, fn: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.seconds[what] += time.perf_counter() - t0


class BoundedFetch:
    """Runtime tensors by name, remembered while they fit ``budget`` bytes, the next planned one prefetched.

    Names the runtime does not have are remembered too. Call ``close`` when done (or use ``with``).
    """

    def __init__(self, get: Getter, clock: PassClock, budget: int = FETCH_BUDGET_BYTES, plan: Sequence[str] = (),
                 sizes: Mapping[str, int] | None = None, ahead: int = AHEAD_BYTES) -> None:
        self.get, self.clock, self.budget = get, clock, budget
        self.sizes, self.ahead = sizes or {}, ahead
        self.plan = list(dict.fromkeys(plan))
        self._after = {name: i + 1 for i, name in enumerate(self.plan)}
        self.held: OrderedDict[str, np.ndarray] = OrderedDict()
        self.absent: set[str] = set()
        self.pending: dict[str, Future[np.ndarray | None]] = {}
        self.fetched_bytes = 0
        self.largest = 0
        self.busy_s = 0.0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weight-fetch")

    def __call__(self, name: str) -> np.ndarray | None:
        if name in self.held:
            self.held.move_to_end(name)
            return self.held[name]
        if name in self.absent:
            return None
        while self.held and sum(t.nbytes for t in self.held.values()) > self.budget:
            self.held.popitem(last=False)
        future = self.pending.pop(name, None) or self._pool.submit(self._timed_get, name)
        self._prefetch_after(name)
        value = self.clock.timed("transfer", future.result)
        if value is None:
            self.absent.add(name)
            return None
        self.fetched_bytes += value.nbytes
        self.largest = max(self.largest, value.nbytes)
        self.held[name] = value
        return value

    def _prefetch_after(self, name: str) -> None:
        """Queue the planned tensors after ``name`` while their sizes fit ``ahead`` (the next
        ``AHEAD_MIN`` always; only those when sizes are unknown)."""
        i = self._after.get(name)
        if i is None:
            return
        queued = sum(self.sizes.get(n, self.ahead) for n in self.pending)
        for nxt in self.plan[i:i + AHEAD_MAX]:
            if len(self.pending) >= AHEAD_MIN and queued + self.sizes.get(nxt, self.ahead) > self.ahead:
                return
            if nxt not in self.held and nxt not in self.absent and nxt not in self.pending:
                self.pending[nxt] = self._pool.submit(self._timed_get, nxt)
                queued += self.sizes.get(nxt, self.ahead)

    def _timed_get(self, name: str) -> np.ndarray | None:
        t0 = time.perf_counter()
        try:
            return self.get(name)
        finally:
            self.busy_s += time.perf_counter() - t0

    def close(self) -> None:
        """Stop prefetching; a fetch in flight finishes and is dropped."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.pending.clear()
        self.held.clear()

    def __enter__(self) -> BoundedFetch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReadBuffer:
    """One buffer reused for every checkpoint tensor read: no fresh pages to fault in per tensor.
    The tensor read into it is valid until the next ``take``."""

    def __init__(self) -> None:
        self.buf = np.empty(0, np.uint8)

    def take(self, nbytes: int) -> np.ndarray:
        if len(self.buf) < nbytes:
            self.buf = np.empty(0, np.uint8)  # drop the old one before the larger one is allocated
            self.buf = np.empty(nbytes, np.uint8)
        return self.buf
