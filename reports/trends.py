"""Trends over the history: a light summary per run, and chart geometry for the template's SVG.

Python computes numbers only (coordinates, labels); the template draws the SVG elements. History
runs are immutable once archived, so each run's summary is cached in
``<history>/.trend-cache/<run_id>.json``, keyed by the size and mtime of its results.jsonl (a
move into the history keeps both, so the summary written when a run is reported is reused).
Reading a run without its cache parses each record only up to its ``details``.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import multiprocessing
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, final

from harness.reports.store import light_rows
from harness.results import ResultRecord, as_number

CACHE_DIR = ".trend-cache"
CACHE_VERSION = 1
PARALLEL_MIN = 12  # uncached runs per worker process before spawning workers pays off (spawn costs ~0.3 s)
STACK = ("pass", "fail", "error", "skipped", "na")
WIDTH, HEIGHT, PAD = 720, 120, 34  # the results-per-run bars
LINE_WIDTH, LINE_HEIGHT = 350, 100  # each small line chart


@final
@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One run reduced to what the trend charts and per-cell history strips need."""

    run_id: str
    started: str
    counts: Mapping[str, int]
    figures: Mapping[str, float | None]
    statuses: Mapping[str, str]  # "cell::check" → status

    @property
    def pass_rate(self) -> float | None:
        ran = sum(self.counts.get(s, 0) for s in ("pass", "fail", "error"))
        return self.counts.get("pass", 0) / ran if ran else None


@final
@dataclasses.dataclass(frozen=True)
class Bar:
    x: float
    width: float
    run_id: str
    segments: tuple[tuple[str, float, float, int], ...]  # (status, y, height, count)


@final
@dataclasses.dataclass(frozen=True)
class LineChart:
    title: str
    width: int
    height: int
    lines: tuple[tuple[tuple[float, float], ...], ...]
    points: tuple[tuple[float, float, str, str], ...]  # (x, y, run_id, value text)
    top: str
    bottom: str


@final
@dataclasses.dataclass(frozen=True)
class Trends:
    runs: tuple[RunSummary, ...]
    bars: tuple[Bar, ...]
    lines: tuple[LineChart, ...]
    width: int = WIDTH
    height: int = HEIGHT
    first: str = ""
    last: str = ""


# (title, figure key, formatter)
SERIES: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("pass rate (pass / ran)", "pass_rate", lambda v: f"{v:.1%}"),
    ("accuracy pass rate (mean)", "accuracy", lambda v: f"{v:.3f}"),
    ("weight parity max |Δ| (worst)", "parity", lambda v: f"{v:.2g}"),
    ("logprob max |Δ| (worst)", "logprob", lambda v: f"{v:.2g}"),
    ("boot s (median)", "boot_s", lambda v: f"{v:.1f}"),
    ("tokens/s (mean)", "tokens_per_s", lambda v: f"{v:.1f}"),
)


def summarize(run_id: str, started: str, rows: Sequence[Mapping[str, Any]]) -> RunSummary:
    """Reduce a run's records (as plain mappings) to a RunSummary; one pass, the hot loop of cold history."""
    counts: dict[str, int] = {}
    statuses: dict[str, str] = {}
    series: dict[str, list[float]] = {"accuracy": [], "parity": [], "logprob": [], "tokens_per_s": []}
    wanted = {"accuracy": ("accuracy", "pass_rate"), "weight_parity": ("parity", "max_abs"),
              "logprob_parity": ("logprob", "max_abs_delta")}
    boots: dict[str, float] = {}
    for r in rows:
        status = str(r.get("status"))
        counts[status] = counts.get(status, 0) + 1
        statuses[f"{r.get('cell')}::{r.get('check')}"] = status
        m = r.get("metrics")
        if status == "skipped" or status == "na" or not isinstance(m, Mapping):
            continue
        want = wanted.get(str(r.get("check")))
        if want is not None and want[1] in m:
            _add(series[want[0]], m[want[1]])
        if "tokens_per_s" in m:
            _add(series["tokens_per_s"], m["tokens_per_s"])
        boot = r.get("boot_s")
        if boot is not None:
            boots[str(r.get("cell"))] = boot
    ran = sum(counts.get(s, 0) for s in ("pass", "fail", "error"))
    boot_values: list[float] = []
    for v in boots.values():
        _add(boot_values, v)
    figures = {"pass_rate": counts.get("pass", 0) / ran if ran else None,
               "accuracy": statistics.fmean(series["accuracy"]) if series["accuracy"] else None,
               "parity": max(series["parity"], default=None), "logprob": max(series["logprob"], default=None),
               "boot_s": statistics.median(boot_values) if boot_values else None,
               "tokens_per_s": statistics.fmean(series["tokens_per_s"]) if series["tokens_per_s"] else None}
    return RunSummary(run_id, started, counts, figures, statuses)


def summarize_records(run_id: str, started: str, records: Sequence[ResultRecord]) -> RunSummary:
    return summarize(run_id, started, [{"cell": r.cell, "check": r.check, "status": r.status, "metrics": r.metrics,
                                        "boot_s": r.boot_s} for r in records])


def cached_summary(run_dir: Path, run_id: str, started: str, cache_dir: Path | None) -> RunSummary | None:
    """The cached summary of a run whose results.jsonl is unchanged since it was cached, else None."""
    if cache_dir is None:
        return None
    try:
        cached = json.loads((cache_dir / f"{_safe(run_id)}.json").read_text())
        if cached.get("stamp") == results_stamp(run_dir / "results.jsonl"):
            return RunSummary(run_id, started, cached["counts"], cached["figures"], cached["statuses"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def summarize_dir(run_dir: Path, run_id: str, started: str, cache_dir: Path | None,
                  rows: Sequence[Mapping[str, Any]] | None = None) -> RunSummary:
    """A run's summary: from ``cache_dir`` when its results.jsonl is unchanged, else computed and cached."""
    hit = cached_summary(run_dir, run_id, started, cache_dir)
    if hit is not None:
        return hit
    stamp = results_stamp(run_dir / "results.jsonl")
    summary = summarize(run_id, started, rows if rows is not None else light_rows(run_dir / "results.jsonl"))
    store_summary(cache_dir, summary, stamp)
    return summary


@final
class HistoryScan:
    """Summaries of history runs, read in worker processes while the caller does other work.

    Cached runs are read at once; uncached ones go to a small pool of spawned processes when there
    are enough of them, otherwise they are read in ``result()``.
    """

    def __init__(self, runs: Sequence[tuple[Path, str, str]], cache_dir: Path | None) -> None:
        self._runs = list(runs)
        self._cache_dir = cache_dir
        self._out: list[RunSummary | None] = [cached_summary(d, rid, st, cache_dir) for d, rid, st in self._runs]
        todo = [i for i, found in enumerate(self._out) if found is None]
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._futures: dict[int, concurrent.futures.Future[RunSummary]] = {}
        workers = min(len(todo) // PARALLEL_MIN, os.cpu_count() or 1, 4)
        if workers >= 1 and len(todo) >= PARALLEL_MIN:
            # spawn, never fork: a fork of a process with other threads (an xdist worker's execnet
            # threads, which threading cannot see) can inherit a held lock and hang forever.
            self._pool = concurrent.futures.ProcessPoolExecutor(max(workers, 1), mp_context=multiprocessing.get_context("spawn"))
            self._futures = {i: self._pool.submit(summarize_dir, *self._runs[i], cache_dir) for i in todo}

    def __enter__(self) -> HistoryScan:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def result(self) -> list[RunSummary]:
        """Every summary, oldest first."""
        for i, found in enumerate(self._out):
            if found is None:
                future = self._futures.get(i)
                self._out[i] = future.result() if future is not None else summarize_dir(*self._runs[i], self._cache_dir)
        return [s for s in self._out if s is not None]


def store_summary(cache_dir: Path | None, summary: RunSummary, stamp: list[int]) -> None:
    """Cache a run's summary (best effort: an unwritable history only makes the next report slower)."""
    if cache_dir is None:
        return
    data = {"stamp": stamp, "counts": summary.counts, "figures": summary.figures, "statuses": summary.statuses}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_cache(cache_dir / f"{_safe(summary.run_id)}.json", data)
    except OSError:
        pass


def build_trends(runs: Sequence[RunSummary]) -> Trends:
    """Chart geometry for the runs, oldest first (the current run last)."""
    if not runs:
        return Trends((), (), ())
    step = (WIDTH - 2 * PAD) / max(len(runs), 1)
    top = max((sum(r.counts.get(s, 0) for s in STACK) for r in runs), default=0) or 1
    bars = []
    for i, r in enumerate(runs):
        y = HEIGHT - 16.0
        segments = []
        for s in STACK:
            n = r.counts.get(s, 0)
            h = (HEIGHT - 26) * n / top
            y -= h
            if n:
                segments.append((s, round(y, 1), round(h, 1), n))
        bars.append(Bar(round(PAD + i * step + step * 0.15, 1), round(step * 0.7, 1), r.run_id, tuple(segments)))
    lines = tuple(c for title, key, fmt in SERIES if (c := _line(title, key, fmt, runs)) is not None)
    return Trends(tuple(runs), tuple(bars), lines, first=runs[0].started[:10], last=runs[-1].started[:10])


def _line(title: str, key: str, fmt: Callable[[float], str], runs: Sequence[RunSummary]) -> LineChart | None:
    values = [r.figures.get(key) for r in runs]
    step = (LINE_WIDTH - 2 * PAD) / max(len(runs), 1)
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or (abs(hi) or 1.0)
    lines: list[list[tuple[float, float]]] = [[]]
    points = []
    for i, (r, v) in enumerate(zip(runs, values, strict=True)):
        if v is None or not math.isfinite(v):
            lines.append([])
            continue
        x = round(PAD + i * step + step / 2, 1)
        y = round(10 + (LINE_HEIGHT - 30) * (1 - (v - lo) / span), 1)
        lines[-1].append((x, y))
        points.append((x, y, r.run_id, fmt(v)))
    return LineChart(title, LINE_WIDTH, LINE_HEIGHT, tuple(tuple(seg) for seg in lines if seg), tuple(points), fmt(hi), fmt(lo))


def results_stamp(results: Path) -> list[int]:
    st = results.stat()
    return [CACHE_VERSION, st.st_size, st.st_mtime_ns]


def _safe(run_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_id) or "run"


def _add(values: list[float], raw: Any) -> None:
    v = as_number(raw)
    if v is not None and math.isfinite(v):
        values.append(v)


def _write_cache(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
