"""The results contract: one JSON line per (cell, check), appended and flushed as it happens.

``results.jsonl`` fields: run_id, cell, runtime, device, model, offload, dtype, tp, check, status
(pass|fail|error|skipped|na), reason, metrics (object), duration_s, and optionally boot_s, details,
log_path, log_tail, fingerprint, command, workarounds, simulated; ``schema`` since record schema 2;
``attempt`` and ``flake`` since 3.
``manifest.json``: schema, run_id, harness/python/package versions, host, devices seen, start/end,
argv, status (running|complete|interrupted). The versions are documented in docs/reports.md.

Record schema history (readers accept every version up to ``RECORD_SCHEMA``):

- 1: no ``schema`` field (harness 0.1.0).
- 2: every record carries ``"schema": 2``; fields otherwise unchanged.
- 3: ``attempt`` (1; 2 for a failing cell booted again and re-checked) and ``flake`` (on a retry:
  ``flaky`` passed on retry, ``broken`` failed on both boots, ``nondeterministic`` the two boots
  disagree beyond tolerance); both attempts are kept, the retry last.

A record from a newer schema still loads (unknown fields are ignored) and is counted in
``LoadedResults.newer``, so a report can say an upgrade would show more.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, final

MANIFEST_SCHEMA = 1
RECORD_SCHEMA = 3
SCHEMA_VERSION = MANIFEST_SCHEMA  # kept for callers of the first release
Status = Literal["pass", "fail", "error", "skipped", "na"]
STATUSES: tuple[str, ...] = ("pass", "fail", "error", "skipped", "na")


@final
@dataclasses.dataclass(frozen=True)
class ResultRecord:
    """One check on one cell."""

    run_id: str
    cell: str
    runtime: str
    device: str
    model: str
    offload: str
    check: str
    status: str
    reason: str = ""
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    duration_s: float = 0.0
    dtype: str = "float32"
    tp: int = 1
    boot_s: float | None = None
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    log_path: str | None = None
    log_tail: str | None = None
    fingerprint: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    command: str | None = None
    workarounds: tuple[str, ...] = ()
    simulated: bool = False
    attempt: int = 1
    flake: str = ""
    schema: int = RECORD_SCHEMA

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def to_json(self) -> str:
        return json.dumps(_jsonable(dataclasses.asdict(self)), sort_keys=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ResultRecord:
        """A new record from plain data (unknown fields ignored); it gets the current schema unless given."""
        kwargs = {k: v for k, v in data.items() if k in _FIELDS}
        kwargs["workarounds"] = tuple(kwargs.get("workarounds") or ())
        for key in ("metrics", "details", "fingerprint"):
            if kwargs.get(key) is None:
                kwargs.pop(key, None)
        return cls(**kwargs)

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> ResultRecord:
        """A record read back from results.jsonl of any schema version (no ``schema`` field: version 1)."""
        return cls.from_mapping({**data, "schema": record_schema(data)})


def record_schema(data: Mapping[str, Any]) -> int:
    """The schema version a stored record was written with (1 when it predates the field)."""
    value = data.get("schema", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"record schema must be a positive integer, got {value!r}")
    return value


_FIELDS = frozenset(f.name for f in dataclasses.fields(ResultRecord))


class ResultWriter:
    """Appends records to results.jsonl: one line each, flushed and fsynced, under an flock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: ResultRecord) -> None:
        line = (record.to_json() + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@final
@dataclasses.dataclass(frozen=True)
class LoadedResults:
    """Records read back from a results file, and the lines that could not be read."""

    records: tuple[ResultRecord, ...]
    skipped_lines: tuple[int, ...] = ()
    newer: int = 0


def read_results(path: Path) -> LoadedResults:
    """Every intact line of results.jsonl; broken lines (a crash mid-write) are listed, not fatal."""
    records, bad = [], []
    if not path.exists():
        return LoadedResults(())
    for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(ResultRecord.from_stored(json.loads(line)))
        except (ValueError, TypeError, AttributeError):
            bad.append(lineno)
    newer = sum(1 for r in records if r.schema > RECORD_SCHEMA)
    return LoadedResults(tuple(records), tuple(bad), newer)


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temp path beside ``path`` to write; renamed over ``path`` when the block ends without an
    error, removed otherwise (nobody ever reads a half-written file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON to a temp file beside ``path`` and rename it over (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(dict(data)), indent=2, sort_keys=True))


def _jsonable(value: Any) -> Any:
    """Plain JSON: non-finite floats become strings ('inf', 'nan'), tuples lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def new_run_id() -> str:
    """Sortable and unique: ``20261124T221500Z-3fa9``."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def archive_previous(out_dir: Path) -> Path | None:
    """Move an earlier run's files out of ``out_dir`` so runs are never mixed; returns where."""
    names = ("results.jsonl", "manifest.json", "index.html", "summary.md", "junit.xml", "portability.json", "logs", "events.jsonl")
    if not any((out_dir / n).exists() for n in names):
        return None
    try:
        run_id = json.loads((out_dir / "manifest.json").read_text())["run_id"]
    except (OSError, ValueError, KeyError):
        run_id = "unknown-" + new_run_id()
    dest = out_dir.parent / "history" / str(run_id)
    if dest.exists():
        dest = dest.with_name(f"{dest.name}-{secrets.token_hex(2)}")
    dest.mkdir(parents=True)
    for n in names:
        if (out_dir / n).exists():
            shutil.move(str(out_dir / n), dest / n)
    return dest


def as_number(value: Any) -> float | None:
    """A metric value as a float: numbers, and the strings 'inf'/'nan' the results contract writes."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("inf", "-inf", "nan", "infinity", "-infinity"):
        return float(value)
    return None
