"""`harness export`: a run's results, or its whole history, as one flat table for dashboards.

One row per result record: the run (``run_id``, ``run_started``, ``run_ended``, ``run_status``),
the cell's fields, the check, its status and reason, timings, and every figure of ``metrics``
flattened into a ``metric.<key>`` column (``{"load": {"s": 2}}`` becomes ``metric.load.s``; a
list is kept as its JSON text). Details, logs and fingerprints stay in results.jsonl; only the
fingerprint's runtime version is copied, as ``runtime_version``.

CSV needs nothing beyond the standard library; Parquet needs pyarrow (the ``parquet`` extra).
Writers are registered by format in ``WRITERS``, so another format is one function and one entry.
"""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO, final

from harness.errors import ConfigError
from harness.reports.store import StoredRun, history_runs, load_light
from harness.results import ResultRecord, as_number, replacing

RUN_COLUMNS = ("run_id", "run_started", "run_ended", "run_status")
RECORD_COLUMNS = ("cell", "runtime", "device", "model", "offload", "dtype", "tp", "check", "status", "reason",
                  "duration_s", "boot_s", "attempt", "flake", "simulated", "workarounds", "runtime_version", "schema")
METRIC_PREFIX = "metric."
PARQUET_FIX = "pip install 'llm-conformance-harness[parquet]'"
EXIT_WRITTEN, EXIT_USAGE = 0, 2


class ExportError(ConfigError):
    """An export cannot be made; the message says what was wrong and the fix."""


@final
@dataclasses.dataclass(frozen=True)
class ExportTable:
    """The rows to write, their columns in order, and how many stored lines could not be read."""

    columns: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]
    runs: int
    skipped_lines: int = 0


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = METRIC_PREFIX) -> dict[str, Any]:
    """``{"pass_rate": 1.0, "load": {"s": 2}}`` -> ``{"metric.pass_rate": 1.0, "metric.load.s": 2}``."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


def record_row(record: ResultRecord, run: StoredRun) -> dict[str, Any]:
    """One record as a flat row: the run's id and times, the cell, the outcome (metrics: ``flatten_metrics``)."""
    manifest = run.manifest
    version = (record.fingerprint or {}).get("version")
    row: dict[str, Any] = {"run_id": record.run_id or manifest.run_id, "run_started": manifest.started,
                           "run_ended": manifest.ended, "run_status": manifest.status}
    row.update({name: getattr(record, name) for name in RECORD_COLUMNS if name != "runtime_version"})
    row["workarounds"] = ",".join(record.workarounds)
    row["runtime_version"] = str(version) if version not in (None, "") else None
    return row


def build_table(runs: Iterable[StoredRun]) -> ExportTable:
    """Every record of ``runs`` (in order) as rows; metric columns sorted after the fixed ones.

    ``runs`` may be lazy: each run is read, turned into rows and let go before the next.
    """
    rows: list[dict[str, Any]] = []
    metric_columns: set[str] = set()
    count = skipped = 0
    for run in runs:
        for rec in run.records:
            metrics = flatten_metrics(rec.metrics or {})
            metric_columns.update(metrics)
            rows.append({**record_row(rec, run), **metrics})
        count, skipped = count + 1, skipped + len(run.skipped_lines)
    return ExportTable((*RUN_COLUMNS, *RECORD_COLUMNS, *sorted(metric_columns)), tuple(rows), count, skipped)


def runs_to_export(run_dir: Path, history: bool, history_dir: Path | None = None) -> Iterator[StoredRun]:
    """``run_dir`` alone, or with ``history``: every run of its history (oldest first), then ``run_dir``.

    Runs are read lazily and without ``details`` (the table has no column for them); a missing
    run directory or history is refused here, before anything is read.
    """
    current = load_light(run_dir, tail=True)
    if not history:
        return iter([current])
    where = history_dir or run_dir.parent / "history"
    if not where.is_dir():
        raise ExportError(f"--history: no history directory {where}; runs are archived to RUN_DIR/../history "
                          "by `harness run`; pass --history-dir DIR, or drop --history to export this run only")
    refs = [r for r in history_runs(where, exclude=[run_dir]) if r.manifest.run_id != current.run_id]
    return itertools.chain((load_light(ref.path, tail=True) for ref in refs), [current])


def write_csv(table: ExportTable, out: Path) -> None:
    """CSV with a header row; an absent value is an empty field, non-finite figures 'inf' / 'nan'."""
    with replacing(out) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=table.columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(table.rows)


def write_parquet(table: ExportTable, out: Path) -> None:
    """Parquet, one typed column each (numbers, flags, text); needs pyarrow."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError(f"--format parquet needs pyarrow, which is not installed; fix: {PARQUET_FIX} "
                          "(or export --format csv, which needs nothing extra)") from None
    arrays = {name: _arrow_column(pa, [row.get(name) for row in table.rows]) for name in table.columns}
    with replacing(out) as tmp:
        pq.write_table(pa.table(arrays), tmp)


WRITERS: dict[str, Callable[[ExportTable, Path], None]] = {"csv": write_csv, "parquet": write_parquet}
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def export_format(fmt: str | None, out: Path) -> str:
    """The format asked for, else the one ``out``'s suffix names."""
    if fmt is None:
        fmt = SUFFIXES.get(out.suffix.lower())
        if fmt is None:
            raise ExportError(f"--out {out}: cannot tell the format from the suffix {out.suffix!r}; "
                              f"pass --format {'|'.join(WRITERS)} or name the file *.csv / *.parquet")
    if fmt not in WRITERS:
        raise ExportError(f"--format {fmt!r} is not known; choose one of: {', '.join(WRITERS)}")
    return fmt


def export_command(run_dir: Path, out: Path, *, fmt: str | None = None, history: bool = False,
                   history_dir: Path | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Write the table; print what was written as the last line. Exit 0 written, 2 bad inputs."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        writer = WRITERS[export_format(fmt, out)]
        table = build_table(runs_to_export(run_dir, history, history_dir))
        out.parent.mkdir(parents=True, exist_ok=True)
        writer(table, out)
    except ConfigError as exc:
        print(f"harness export: {exc}", file=stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"harness export: cannot write {out}: {exc.strerror or exc}; pass an --out path in a writable directory",
              file=stderr)
        return EXIT_USAGE
    if table.skipped_lines:
        print(f"harness export: {table.skipped_lines} unreadable line(s) in results.jsonl skipped", file=stderr)
    print(f"Exported {len(table.rows)} rows from {table.runs} run(s) to {out}", file=stdout)
    return EXIT_WRITTEN


def _arrow_column(pa: Any, values: list[Any]) -> Any:
    """A typed pyarrow array: flags, whole numbers, numbers ('inf' / 'nan' included), else text."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.array(values, pa.bool_())
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.array(values, pa.int64())
    numbers = [None if v is None else as_number(v) for v in values]
    if present and all(n is not None for v, n in zip(values, numbers, strict=True) if v is not None):
        return pa.array(numbers, pa.float64())
    return pa.array([None if v is None else str(v) for v in values], pa.string())

