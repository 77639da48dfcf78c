"""Report data: everything the HTML shows, computed from a run directory; no I/O beyond reading it."""
from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, final

from harness.results import ResultRecord, read_results

STATUS_ORDER = ("error", "fail", "pass", "na", "skipped")


@final
@dataclasses.dataclass(frozen=True)
class GridCell:
    """One check's result on one cell, with the figure shown in the grid."""

    record: ResultRecord
    figure: str


@final
@dataclasses.dataclass(frozen=True)
class GridRow:
    """One cell of a model: its id parts and each check's result."""

    cell: str
    label: str
    status: str
    results: Mapping[str, GridCell]
    boot_s: float | None
    common_reason: str | None = None


@final
@dataclasses.dataclass(frozen=True)
class ModelGrid:
    model: str
    checks: tuple[str, ...]
    rows: tuple[GridRow, ...]
    counts: Mapping[str, int]


@final
@dataclasses.dataclass(frozen=True)
class ReportData:
    manifest: Mapping[str, Any]
    verdict: str
    verdict_reason: str
    counts: Mapping[str, int]
    grids: tuple[ModelGrid, ...]
    problems: tuple[ResultRecord, ...]
    skipped_lines: tuple[int, ...]
    workarounds: tuple[str, ...]


def figure(rec: ResultRecord) -> str:
    """The key figure of a result, as short text: '10/10', 'max|Δ| 0', 'boot-crash'."""
    m = rec.metrics or {}
    if rec.status in ("skipped", "na"):
        return "N/A" if rec.status == "na" else "skipped"
    if rec.status == "error":
        return rec.reason.split(":", 1)[0]
    if rec.check == "accuracy" and "correct" in m:
        return f"{m['correct']}/{m['total']}"
    if rec.check == "weight_parity" and "tensors_compared" in m:
        worst = m.get("max_abs")
        worst_s = f"{float(worst):.2g}" if isinstance(worst, (int, float)) else str(worst)
        return f"{m['tensors_compared']} tensors, max|Δ| {worst_s}"
    key = next(iter(m), None)
    return f"{key}={m[key]}" if key else rec.status


def build_data(run_dir: Path) -> ReportData:
    """Read manifest.json and results.jsonl of a run directory into report data."""
    manifest = _read_manifest(run_dir / "manifest.json")
    loaded = read_results(run_dir / "results.jsonl")
    records = loaded.records
    counts = Counter(r.status for r in records)
    verdict, why = _verdict(counts, manifest)
    problems = tuple(r for r in records if r.status in ("fail", "error"))
    workarounds = tuple(sorted({w for r in records for w in r.workarounds}))
    return ReportData(manifest, verdict, why, dict(counts), _grids(records), problems, loaded.skipped_lines, workarounds)


def _grids(records: Sequence[ResultRecord]) -> tuple[ModelGrid, ...]:
    by_model: dict[str, list[ResultRecord]] = {}
    for r in records:
        by_model.setdefault(r.model, []).append(r)
    grids = []
    for model, recs in by_model.items():
        checks = tuple(dict.fromkeys(r.check for r in recs))
        cells: dict[str, dict[str, ResultRecord]] = {}
        for r in recs:
            cells.setdefault(r.cell, {})[r.check] = r
        rows = tuple(_row(cell_id, res) for cell_id, res in cells.items())
        grids.append(ModelGrid(model, checks, rows, dict(Counter(r.status for r in recs))))
    return tuple(grids)


def _row(cell_id: str, results: Mapping[str, ResultRecord]) -> GridRow:
    first = next(iter(results.values()))
    label = " · ".join(p for p in (first.runtime, first.device, first.offload,
                                   first.dtype if first.dtype != "float32" else "", f"tp{first.tp}" if first.tp != 1 else "") if p)
    status = min((r.status for r in results.values()), key=STATUS_ORDER.index)
    boot = next((r.boot_s for r in results.values() if r.boot_s is not None), None)
    reasons = {(r.status, r.reason) for r in results.values()}
    common = next(iter(reasons))[1] if len(reasons) == 1 and status in ("na", "skipped") else None
    return GridRow(cell_id, label, status, {c: GridCell(r, figure(r)) for c, r in results.items()}, boot, common)


def _verdict(counts: Counter[str], manifest: Mapping[str, Any]) -> tuple[str, str]:
    bad = counts.get("fail", 0) + counts.get("error", 0)
    if manifest.get("status") == "interrupted":
        return "INCOMPLETE", "the run was interrupted; results below are what finished"
    if bad:
        return "FAIL", f"{bad} check(s) failed or errored"
    if counts.get("pass", 0):
        return "PASS", f"{counts['pass']} check(s) passed; none failed"
    return "NO RESULTS", "no check ran: every cell was skipped or N/A"


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"status": "unknown", "note": f"no readable manifest at {path}"}
