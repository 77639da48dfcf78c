"""Split cells across runners: longest-processing-time first, by durations of an earlier run."""
from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.results import read_results


def durations_from_results(path: Path | None) -> dict[str, float]:
    """Seconds per cell (boot + its checks) from a results.jsonl; {} when there is none."""
    if path is None or not path.is_file():
        return {}
    per_cell: dict[str, float] = {}
    boots: dict[str, float] = {}
    for rec in read_results(path).records:
        per_cell[rec.cell] = per_cell.get(rec.cell, 0.0) + float(rec.duration_s or 0.0)
        if rec.boot_s:
            boots[rec.cell] = float(rec.boot_s)
    return {c: round(t + boots.get(c, 0.0), 3) for c, t in per_cell.items()}


def assign(cells: Sequence[str], durations: Mapping[str, float], shards: int) -> dict[str, int]:
    """Cell id -> shard number (1-based), deterministic for the same inputs.

    Known durations are used as weights; cells never seen weigh the mean of the known ones (1.0
    when nothing is known, which balances by cell count). Longest first onto the lightest shard.
    """
    known = [durations[c] for c in cells if c in durations]
    default = sum(known) / len(known) if known else 1.0
    weights = {c: durations.get(c, default) for c in cells}
    heap = [(0.0, i) for i in range(1, shards + 1)]
    out: dict[str, int] = {}
    for cell in sorted(cells, key=lambda c: (-weights[c], c)):
        load, shard = heapq.heappop(heap)
        out[cell] = shard
        heapq.heappush(heap, (load + weights[cell], shard))
    return out
