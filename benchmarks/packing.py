"""The maths of the matrix benchmark: cell times, the packing bound, wall time not spent on runtimes.

Pure functions over a run directory's records and the timing plugin's intervals; no I/O here
except reading the files of one run (``load_run``).

The packing bound is the best wall time possible when every cell boots once and its device is
never idle: a device with ``k`` parallel slots (CPU: the xdist workers; an accelerator: its
cards // tp, and never more than the workers) needs at least the longest cell and at least its
total cell time spread over ``k`` slots::

    bound(device) = max(longest cell, Σ cell time / k)
    bound(run)    = max(max over devices bound(device), Σ all cell time / workers)

(cells of mixed tp on one accelerator: ``max(longest cell, Σ cell time × tp / cards)``).

>>> packing_bound([4.0, 3.0, 3.0], slots=2)
5.0
>>> packing_bound([9.0, 1.0], slots=2)
9.0
"""
from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, final

Interval = tuple[float, float]
RUNTIME_KINDS = ("boot", "stop", "request")


def packing_bound(cell_seconds: Sequence[float], slots: int) -> float:
    """max(longest cell, Σ / slots); 0 for no cells. ``slots`` below 1 counts as 1."""
    if not cell_seconds:
        return 0.0
    return max(max(cell_seconds), sum(cell_seconds) / max(1, slots))


def union_length(intervals: Iterable[Interval]) -> float:
    """Seconds covered by at least one interval.

    >>> union_length([(0, 2), (1, 3), (5, 6)])
    4.0
    """
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def clip(intervals: Iterable[Interval], lo: float, hi: float) -> list[Interval]:
    """The parts of ``intervals`` inside [lo, hi]."""
    return [(max(a, lo), min(b, hi)) for a, b in intervals if min(b, hi) > max(a, lo)]


@final
@dataclasses.dataclass(frozen=True)
class CellTime:
    """Where one cell's time went: boot, its checks, teardown (seconds)."""

    cell: str
    device: str
    tp: int
    boot_s: float
    checks_s: float
    teardown_s: float

    @property
    def total_s(self) -> float:
        return self.boot_s + self.checks_s + self.teardown_s


@final
@dataclasses.dataclass(frozen=True)
class TimingEvent:
    """One interval written by benchmarks/timing.py (``pid`` tells the pytest process)."""

    pid: int
    kind: str
    label: str
    t0: float
    t1: float


@final
@dataclasses.dataclass(frozen=True)
class RunFiles:
    """What one `harness run` left: records, the manifest and the timing intervals."""

    records: tuple[Mapping[str, Any], ...]
    manifest: Mapping[str, Any]
    timing: tuple[TimingEvent, ...]

    @property
    def workers(self) -> int:
        """xdist workers that ran tests (0 without xdist: the controller runs them)."""
        return sum(1 for e in self.timing if e.kind == "process" and e.label == "worker")

    def intervals(self, *kinds: str) -> list[Interval]:
        return [(e.t0, e.t1) for e in self.timing if e.kind in kinds]


def load_run(run_dir: Path, timing_dir: Path | None) -> RunFiles:
    """Read results.jsonl (a torn last line is skipped), manifest.json and the timing files."""
    records = []
    for line in (run_dir / "results.jsonl").read_text().splitlines() if (run_dir / "results.jsonl").exists() else ():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    events = []
    for f in sorted(timing_dir.glob("*.jsonl")) if timing_dir and timing_dir.is_dir() else ():
        for line in f.read_text().splitlines():
            e = json.loads(line)
            events.append(TimingEvent(int(f.stem), e["kind"], e["label"], float(e["t0"]), float(e["t1"])))
    return RunFiles(tuple(records), manifest, tuple(events))


def cell_times(run: RunFiles) -> list[CellTime]:
    """Per cell that booted or ran a check: boot and teardown from the timing intervals (else the
    records' ``boot_s``), checks from the records' ``duration_s`` (the check call's time)."""
    boots: dict[str, float] = defaultdict(float)
    stops: dict[str, float] = defaultdict(float)
    for e in run.timing:
        if e.kind == "boot":
            boots[e.label] += e.t1 - e.t0
        elif e.kind == "stop":
            stops[e.label] += e.t1 - e.t0
    by_cell: dict[str, dict[str, Any]] = {}
    for r in run.records:
        c = by_cell.setdefault(r["cell"], {"device": r.get("device", "?"), "tp": int(r.get("tp") or 1),
                                           "boot_s": 0.0, "checks_s": 0.0})
        c["boot_s"] = max(c["boot_s"], float(r.get("boot_s") or 0.0))
        if r.get("status") not in ("na", "skipped"):
            c["checks_s"] += float(r.get("duration_s") or 0.0)
    out = []
    for cell, c in by_cell.items():
        boot = boots.get(cell, c["boot_s"])
        if boot or c["checks_s"]:
            out.append(CellTime(cell, c["device"], c["tp"], boot, c["checks_s"], stops.get(cell, 0.0)))
    return out


def device_slots(device: str, workers: int, cards: int, tp: int) -> int:
    """Parallel cells a device can hold: CPU: the workers; accelerators: cards // tp, capped by workers."""
    lanes = max(1, workers)
    if device == "cpu":
        return lanes
    return max(1, min(lanes, cards // max(1, tp)))


def device_bound(device: str, cells: Sequence[CellTime], workers: int, cards: int) -> tuple[int, float]:
    """(slots, bound) of one device. With mixed tp on an accelerator the slots of the largest tp are
    reported and the bound is the card-seconds one, ``Σ cell time × tp / cards``, also a lower bound."""
    tps = {c.tp for c in cells}
    slots = device_slots(device, workers, cards, max(tps))
    times = [c.total_s for c in cells]
    if device == "cpu" or len(tps) == 1:
        return slots, packing_bound(times, slots)
    card_seconds = sum(c.total_s * c.tp for c in cells) / max(1, cards)
    return slots, max(packing_bound(times, max(1, workers)), card_seconds)


def bounds(cells: Sequence[CellTime], workers: int, cards: Mapping[str, int]) -> dict[str, Any]:
    """The packing bound per device and for the run (see the module docstring)."""
    per_device: dict[str, dict[str, float]] = {}
    for device in sorted({c.device for c in cells}):
        mine = [c for c in cells if c.device == device]
        slots, bound = device_bound(device, mine, workers, int(cards.get(device, 1) or 1))
        per_device[device] = {
            "cells": len(mine), "slots": slots, "boot_s": round(sum(c.boot_s for c in mine), 3),
            "checks_s": round(sum(c.checks_s for c in mine), 3), "teardown_s": round(sum(c.teardown_s for c in mine), 3),
            "sum_cell_s": round(sum(c.total_s for c in mine), 3),
            "longest_cell_s": round(max(c.total_s for c in mine), 3), "bound_s": round(bound, 3),
        }
    spread = sum(c.total_s for c in cells) / max(1, workers)
    overall = max([spread, *(d["bound_s"] for d in per_device.values())], default=0.0)
    return {"devices": per_device, "bound_s": round(overall, 3)}


def overhead(run: RunFiles, start: float, end: float) -> dict[str, float]:
    """Wall time in which no runtime was booting, stopping or answering a request, and where it lies."""
    busy = sorted(clip(run.intervals(*RUNTIME_KINDS), start, end))
    wall = end - start
    covered = union_length(busy)
    before = (busy[0][0] - start) if busy else wall
    after = (end - max(b for _, b in busy)) if busy else 0.0
    return {
        "overhead_s": round(wall - covered, 3), "overhead_frac": round((wall - covered) / wall, 4) if wall else 0.0,
        "before_first_boot_s": round(before, 3), "after_last_runtime_s": round(after, 3),
        "between_cells_and_in_checks_s": round(wall - covered - before - after, 3),
        "runtime_busy_s": round(covered, 3), "in_check_harness_compute_s": round(check_compute(run), 3),
    }


def check_compute(run: RunFiles) -> float:
    """Σ over check calls of the time that check's process spent outside runtime requests."""
    by_pid: dict[int, list[Interval]] = defaultdict(list)
    for e in run.timing:
        if e.kind in ("request", "boot"):  # a check that boots the reference waits on that boot too
            by_pid[e.pid].append((e.t0, e.t1))
    total = 0.0
    for e in run.timing:
        if e.kind == "check":
            total += (e.t1 - e.t0) - union_length(clip(by_pid[e.pid], e.t0, e.t1))
    return total


def process_spans(run: RunFiles, start: float) -> dict[str, Any]:
    """When each pytest process that ran cells began its first boot and ended its last teardown
    (seconds after ``start``), and how far apart the last ones ended: the scheduling tail.

    >>> run = RunFiles((), {}, (TimingEvent(1, "boot", "a", 2.0, 5.0), TimingEvent(1, "stop", "a", 9.0, 10.0),
    ...                         TimingEvent(2, "boot", "b", 2.0, 6.0), TimingEvent(2, "stop", "b", 7.0, 8.0)))
    >>> process_spans(run, 0.0)
    {'spans': [[2.0, 10.0], [2.0, 8.0]], 'end_imbalance_s': 2.0}
    """
    spans: dict[int, list[float]] = {}
    for e in run.timing:
        if e.kind in ("boot", "stop"):
            lo, hi = spans.get(e.pid, [e.t0, e.t1])
            spans[e.pid] = [min(lo, e.t0), max(hi, e.t1)]
    ends = [hi for _, hi in spans.values()]
    return {"spans": [[round(lo - start, 3), round(hi - start, 3)] for lo, hi in spans.values()],
            "end_imbalance_s": round(max(ends) - min(ends), 3) if ends else 0.0}


def statuses(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in records:
        out[str(r.get("status"))] += 1
    return dict(sorted(out.items()))


def analyse(run: RunFiles, start: float, end: float) -> dict[str, Any]:
    """Every figure of one run, as JSON-ready values."""
    cells = cell_times(run)
    workers = run.workers
    cards = {k: int(v.get("count") or 0) for k, v in (run.manifest.get("devices") or {}).items() if isinstance(v, Mapping)}
    b = bounds(cells, workers, cards)
    wall = end - start
    return {
        "wall_s": round(wall, 3), "workers": workers, "cells": len(cells),
        "boots": sum(1 for e in run.timing if e.kind == "boot") or sum(1 for c in cells if c.boot_s),
        "statuses": statuses(run.records), **b,
        "wall_over_bound": round(wall / b["bound_s"], 4) if b["bound_s"] else None,
        **overhead(run, start, end), "processes": process_spans(run, start),
        "reference_sources": dict(statuses({"status": r.get("metrics", {}).get("reference_source")}
                                           for r in run.records if r.get("check") == "logprob_parity")),
    }
