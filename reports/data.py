"""Report data: everything the HTML, Markdown and JUnit outputs show, computed from stored runs (no I/O).

``assemble`` takes what the builder loaded (the run, its sign-off, the diff, the trends) and
returns one frozen ReportData; templates only read it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, final

from harness.causes import CauseGroup, group_failures
from harness.config.matrix import DEVICES
from harness.redact import Redactor
from harness.reports.diff import RunDiff
from harness.reports.environment import Environment, build_environment
from harness.reports.figures import Fact, check_of, facts, headline, number, seconds, warning_of
from harness.reports.overview import Folded, Heatmap, RowLike, fold, heatmap
from harness.reports.portability import PortabilitySection
from harness.reports.signoff import Finding, SignOff
from harness.reports.store import StoredRun
from harness.reports.trends import RunSummary, Trends
from harness.results import ResultRecord

STATUS_ORDER = ("error", "fail", "pass", "na", "skipped")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_MAX_TABLE_ROWS = 50
PASSING_EVIDENCE_ROWS = 3  # a passing, unchanged result shows this many evidence rows (keeps big reports fast)


@final
@dataclasses.dataclass(frozen=True)
class GridCell:
    """One check's result on one cell, with the figure shown in the grid and its sign-off marks."""

    record: ResultRecord
    figure: str
    change: str = ""       # a diff kind: new-failure, fixed, still-failing, coverage-lost
    waived: bool = False
    blocking: bool = False
    first: ResultRecord | None = None  # the first boot's result when the cell was booted again (record.flake)


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
    anchor: str = ""

    @property
    def boot(self) -> str:
        """Boot time for people: ``2.5 s`` (empty when the cell did not boot)."""
        return seconds(self.boot_s)


@final
@dataclasses.dataclass(frozen=True)
class ModelGrid:
    """One model's cells: ``rows`` all of them (matrix order); ``ran`` those that ran, failing first;
    ``folded`` the others, one line per reason."""

    model: str
    checks: tuple[str, ...]
    rows: tuple[GridRow, ...]
    counts: Mapping[str, int]
    ran: tuple[GridRow, ...] = ()
    idle: tuple[GridRow, ...] = ()
    folded: tuple[Folded, ...] = ()

    @property
    def idle_count(self) -> int:
        """Cells that did not run and were planned (N/A cells are not)."""
        return sum(len(f.cells) for f in self.folded if f.status != "na")


class Answer(NamedTuple):
    """One prompt of an accuracy check (a named tuple: thousands per report, cheap to build)."""

    prompt: str
    expected: str
    got: str
    ok: bool


class Tensor(NamedTuple):
    """One of the worst tensors of a weight-parity check."""

    name: str
    shape: str
    max_abs: Any
    max_rel: Any
    cosine: Any
    frac_outside: Any
    ok: bool
    note: str


@final
@dataclasses.dataclass(frozen=True)
class DetailTable:
    """Any other list of objects in a record's details (e.g. logprob deltas), as text columns."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@final
@dataclasses.dataclass(frozen=True)
class CheckDrill:
    check: str
    record: ResultRecord
    figure: str
    change: str
    waiver: str
    answers: tuple[Answer, ...]
    tensors: tuple[Tensor, ...]
    unavailable: tuple[str, ...]
    tables: tuple[DetailTable, ...]
    history: tuple[tuple[str, str], ...]  # (run_id, status), oldest first, this run last; only for problems
    history_note: str                      # e.g. "pass in 29 of 29 earlier runs", when no strip is shown
    figures: tuple[Fact, ...]              # ("correct", "12/12 (100%)"), ("max |Δ|", "3.1e-7"); empty ones left out
    took: str                              # "55 ms", "4.2 s"
    omitted: int                           # evidence rows not shown (all of them are in results.jsonl)


@final
@dataclasses.dataclass(frozen=True)
class CellDrill:
    cell: str
    anchor: str
    model: str
    label: str
    status: str
    boot_s: float | None
    command: str
    log_path: str
    log_tail: str
    checks: tuple[CheckDrill, ...]
    open: bool

    @property
    def log_href(self) -> str:
        """The log relative to the report (``logs/<cell>.log``), so the link works wherever the run dir is copied."""
        parts = self.log_path.replace("\\", "/").rsplit("/", 2)
        return f"logs/{parts[-1]}" if len(parts) > 1 and parts[-2] == "logs" else ""

    @property
    def boot(self) -> str:
        return seconds(self.boot_s)


@final
@dataclasses.dataclass(frozen=True)
class Blocker:
    finding: Finding
    change: str
    streak: int  # consecutive runs (this one included) in which it was failing


@final
@dataclasses.dataclass(frozen=True)
class ReportData:
    manifest: Mapping[str, Any]
    signoff: SignOff
    blockers: tuple[Blocker, ...]
    diff: RunDiff | None
    baseline_note: str
    counts: Mapping[str, int]
    grids: tuple[ModelGrid, ...]
    drills: tuple[CellDrill, ...]
    trends: Trends
    environment: Environment
    skipped_lines: tuple[int, ...]
    notes: tuple[str, ...]
    workarounds: tuple[str, ...]
    generated: str
    portability: PortabilitySection | None = None  # from portability.json, when the run has one
    causes: tuple[CauseGroup, ...] = ()  # failures grouped by reason (root cause read from the log), most cells first
    heatmap: Heatmap = Heatmap((), (), ())
    warnings: tuple[str, ...] = ()  # e.g. fact sets too small for the card's min_detectable_drop, one per model

    @property
    def ran_grids(self) -> tuple[ModelGrid, ...]:
        """Models with at least one cell that ran, those with failures first."""
        return tuple(g for g in self.grids if g.ran)

    @property
    def idle_grids(self) -> tuple[ModelGrid, ...]:
        """Models none of whose cells ran: one line each."""
        return tuple(g for g in self.grids if not g.ran)

    @property
    def verdict(self) -> str:
        return self.signoff.verdict

    @property
    def verdict_reason(self) -> str:
        return self.signoff.headline

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", ""))

    @property
    def new_blockers(self) -> int:
        """Blockers that were not failing in the baseline: what broke since last night."""
        return sum(1 for b in self.blockers if b.change == "new-failure")


def figure(rec: ResultRecord) -> str:
    """The key figure of a result, as short text: '10/10', '21 tensors, max|Δ| 0', '45 by digest',
    'boot-crash'; what the record's check says it means (reports/figures.py), never its name."""
    m = rec.metrics or {}
    if rec.status in ("skipped", "na"):
        return "N/A" if rec.status == "na" else "skipped"
    if rec.status == "error":
        return rec.reason.split(":", 1)[0]
    return headline(rec.check, m) or rec.status


def assemble(run: StoredRun, signoff: SignOff, diff: RunDiff | None, baseline_note: str, trends: Trends,
             environment: Environment | None = None, manifest: Mapping[str, Any] | None = None) -> ReportData:
    """All report data for ``run``; ``manifest`` is the (redacted) manifest to show."""
    records = run.records
    changes = diff.kind_of() if diff else {}
    waived = {(f.cell, f.check): f.waiver.label for f in signoff.waived if f.waiver}
    blocking = {(f.cell, f.check) for f in signoff.blockers}
    history = trends.runs[:-1] if trends.runs else ()
    grids = _grids(records, changes, waived, blocking, signoff.coverage.states)
    drills = tuple(_drill(row, g.model, changes, waived, blocking, history) for g in grids for row in g.rows)
    # run-level blockers first, then what broke since the baseline, then the rest in policy order
    blockers = tuple(sorted((Blocker(f, changes.get((f.cell, f.check), ""), _streak(f, history)) for f in signoff.blockers),
                            key=lambda b: (bool(b.finding.cell), b.change != "new-failure")))
    return ReportData(manifest if manifest is not None else run.manifest.raw, signoff, blockers, diff, baseline_note,
                      dict(Counter(r.status for r in records)), grids, drills, trends,
                      environment or build_environment(run.manifest.raw, records, Redactor()),
                      run.skipped_lines, _notes(run), tuple(sorted({w for r in records for w in r.workarounds})),
                      dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      heatmap=heatmap({g.model: [_rowlike(r) for r in g.rows] for g in grids}, signoff.coverage.states),
                      causes=tuple(group_failures(records)), warnings=result_warnings(records))


def result_warnings(records: Sequence[ResultRecord]) -> tuple[str, ...]:
    """One line per model and check whose results carry a caution (the check's ``warning``): e.g. a model's
    accuracy prompts too few for the card's ``min_detectable_drop``."""
    found: dict[tuple[str, str], str] = {}
    for r in records:
        text = warning_of(r.check, r.metrics or {})
        if text:
            found[(r.model, r.check)] = text
    return tuple(f"{model} {check}: {text}" for (model, check), text in sorted(found.items()))


def _grids(records: Sequence[ResultRecord], changes: Mapping[tuple[str, str], str], waived: Mapping[tuple[str, str], str],
           blocking: set[tuple[str, str]], states: Mapping[str, str]) -> tuple[ModelGrid, ...]:
    """One grid per model; models with a failing cell first, then those that ran, then the rest (by name)."""
    by_model: dict[str, dict[str, dict[str, ResultRecord]]] = {}
    checks_of: dict[str, dict[str, None]] = {}
    firsts: dict[tuple[str, str], ResultRecord] = {}
    for r in records:
        cell_results = by_model.setdefault(r.model, {}).setdefault(r.cell, {})
        if r.attempt > 1 and r.check in cell_results:
            firsts[(r.cell, r.check)] = cell_results[r.check]  # the retry is shown; the first boot's result beside it
        cell_results[r.check] = r
        checks_of.setdefault(r.model, {})[r.check] = None
    grids = []
    for model, cells in sorted(by_model.items()):
        ordered = sorted(cells.items(), key=lambda item: _row_order(next(iter(item[1].values()))))
        rows = tuple(_row(cell_id, res, changes, waived, blocking, firsts) for cell_id, res in ordered)
        counts = Counter(r.status for res in cells.values() for r in res.values())
        ran = tuple(sorted((r for r in rows if states.get(r.cell) in ("ran", "simulated")),
                           key=lambda r: STATUS_ORDER.index(r.status) if r.status in STATUS_ORDER else 0))
        idle = tuple(r for r in rows if states.get(r.cell) not in ("ran", "simulated"))
        grids.append(ModelGrid(model, tuple(checks_of[model]), rows, dict(counts), ran, idle,
                               fold([_rowlike(r) for r in idle])))
    return tuple(sorted(grids, key=lambda g: (not (g.counts.get("fail") or g.counts.get("error")), not g.ran)))


def _rowlike(row: GridRow) -> RowLike:
    """What the heatmap and the folding read of a grid row."""
    first = next(iter(row.results.values())).record
    reason = row.common_reason or next((gc.record.reason for gc in row.results.values() if gc.record.status == row.status), "")
    return RowLike(row.cell, row.anchor, first.runtime, first.device, first.offload, row.status, reason or "",
                   any(gc.change == "new-failure" for gc in row.results.values()))


def _row_order(r: ResultRecord) -> tuple[Any, ...]:
    """Rows in one order however the run was sharded: runtime, device (matrix order), offload (none first), dtype, tp."""
    device = DEVICES.index(r.device) if r.device in DEVICES else len(DEVICES)
    return (r.runtime, device, r.device, r.offload != "none", r.offload, r.dtype, r.tp)


def _row(cell_id: str, results: Mapping[str, ResultRecord], changes: Mapping[tuple[str, str], str],
         waived: Mapping[tuple[str, str], str], blocking: set[tuple[str, str]],
         firsts: Mapping[tuple[str, str], ResultRecord]) -> GridRow:
    first = next(iter(results.values()))
    label = " · ".join(p for p in (first.runtime, first.device, first.offload,
                                   first.dtype if first.dtype != "float32" else "", f"tp{first.tp}" if first.tp != 1 else "") if p)
    status = min((r.status for r in results.values()), key=STATUS_ORDER.index)
    boot = next((r.boot_s for r in results.values() if r.boot_s is not None), None)
    reasons = {(r.status, r.reason) for r in results.values()}
    common = next(iter(reasons))[1] if len(reasons) == 1 and status in ("na", "skipped") else None
    cells = {c: GridCell(r, figure(r), changes.get((cell_id, c), ""), (cell_id, c) in waived, (cell_id, c) in blocking,
                         firsts.get((cell_id, c)))
             for c, r in results.items()}
    return GridRow(cell_id, label, status, cells, boot, common, f"drill-{cell_id}")


def _drill(row: GridRow, model: str, changes: Mapping[tuple[str, str], str], waived: Mapping[tuple[str, str], str],
           blocking: set[tuple[str, str]], history: Sequence[RunSummary]) -> CellDrill:
    recs = [gc.record for gc in row.results.values()]
    tail = next((r.log_tail for r in recs if r.log_tail), "") or ""
    checks = tuple(_check_drill(gc.record, gc.figure, changes.get((row.cell, c), ""), waived.get((row.cell, c), ""), history)
                   for c, gc in row.results.items())
    notable = any((row.cell, c) in blocking or changes.get((row.cell, c)) == "new-failure" for c in row.results)
    return CellDrill(row.cell, row.anchor, model, row.label, row.status, row.boot_s,
                     next((r.command for r in recs if r.command), "") or "",
                     next((r.log_path for r in recs if r.log_path), "") or "", _ANSI.sub("", tail), checks, notable)


def _check_drill(rec: ResultRecord, fig: str, change: str, waiver: str, history: Sequence[RunSummary]) -> CheckDrill:
    d = rec.details or {}
    limit = PASSING_EVIDENCE_ROWS if rec.status == "pass" and not change else _MAX_TABLE_ROWS
    raw_answers = sorted(_dicts(d.get("answers")), key=lambda a: bool(a.get("ok")))  # wrong answers first
    answers = tuple(Answer(_s(a.get("prompt")), _s(a.get("expected")), _s(a.get("got")), bool(a.get("ok")))
                    for a in raw_answers[:limit])
    tensor_key = getattr(check_of(rec.check), "tensor_table", None)  # the details rows that are tensors, if any
    raw_tensors = _dicts(d.get(tensor_key)) if tensor_key else []
    tensors = tuple(Tensor(_s(t.get("name")), "×".join(map(str, t.get("shape") or [])), t.get("max_abs"), t.get("max_rel"),
                           t.get("cosine"), t.get("frac_outside"), bool(t.get("ok", True)), _s(t.get("note")))
                    for t in raw_tensors[:limit])
    unavailable = tuple(map(str, d.get("unavailable") or ())) if isinstance(d.get("unavailable"), list) else ()
    skip = {"answers", "unavailable"} | ({tensor_key} if tensor_key else set())
    others = {k: _dicts(v) for k, v in d.items() if k not in skip and _dicts(v)}
    tables = tuple(_table(k, v[:limit]) for k, v in others.items())
    omitted = (len(raw_answers) - len(answers)) + (len(raw_tensors) - len(tensors)) + sum(max(0, len(v) - limit) for v in others.values())
    key = f"{rec.cell}::{rec.check}"
    past = [h.statuses.get(key, "absent") for h in history]
    notable = rec.status in ("fail", "error") or bool(change) or bool(waiver)
    strip = (*zip((h.run_id for h in history), past, strict=True), ("this run", rec.status)) if notable else ()
    return CheckDrill(rec.check, rec, fig, change, waiver, answers, tensors, unavailable, tables, tuple(strip),
                      _history_note(past, rec.status), facts(rec.check, rec.metrics or {}, d),
                      seconds(rec.duration_s) if rec.duration_s else "", omitted)


def _history_note(past: Sequence[str], status: str) -> str:
    if not past:
        return "no earlier runs"
    return f"{status} in {past.count(status)} of {len(past)} earlier run(s)"


def _table(title: str, items: Any) -> DetailTable:
    """Rows of objects as text; columns empty in every row are left out, headers made readable."""
    rows = _dicts(items)
    keys = [k for k in dict.fromkeys(k for row in rows for k in row) if any(_short(row.get(k)) for row in rows)][:10]
    return DetailTable(title.replace("_", " "), tuple(k.replace("_", " ") for k in keys),
                       tuple(tuple(_short(row.get(k)) for k in keys) for row in rows))


def _streak(f: Finding, history: Sequence[RunSummary]) -> int:
    if f.kind not in ("fail", "error"):
        return 0
    key, n = f"{f.cell}::{f.check}", 1
    for h in reversed(history):
        if h.statuses.get(key) not in ("fail", "error"):
            break
        n += 1
    return n


def _notes(run: StoredRun) -> tuple[str, ...]:
    notes = []
    if run.skipped_lines:
        lines = ", ".join(map(str, run.skipped_lines[:20]))
        notes.append(f"results.jsonl had {len(run.skipped_lines)} unreadable line(s) (line {lines}); everything else is shown.")
    if run.newer_records or run.manifest.newer_than_supported:
        notes.append("This run was written by a newer harness (a newer schema); upgrade the harness to see every field.")
    simulated = sum(1 for r in run.records if r.simulated)
    if simulated:
        notes.append(f"{simulated} result(s) come from simulated devices (run on the CPU): they never count towards sign-off.")
    return tuple(notes)


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _short(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items())
    return number(value)


def _s(value: Any) -> str:
    return "" if value is None else str(value)
