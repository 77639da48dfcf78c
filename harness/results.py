"""The results contract: one JSON line per (cell, check), appended and flushed as it happens.

``results.jsonl`` fields (schema 1): run_id, cell, runtime, device, model, offload, dtype, tp,
check, status (pass|fail|error|skipped|na), reason, metrics (object), duration_s, and optionally
boot_s, details, log_path, log_tail, fingerprint, command, workarounds, simulated.
``manifest.json``: schema, run_id, harness/python/package versions, host, devices seen, start/end,
argv, status (running|complete|interrupted).
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, final

SCHEMA_VERSION = 1
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

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def to_json(self) -> str:
        return json.dumps(_jsonable(dataclasses.asdict(self)), sort_keys=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ResultRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["workarounds"] = tuple(kwargs.get("workarounds") or ())
        return cls(**kwargs)


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


def read_results(path: Path) -> LoadedResults:
    """Every intact line of results.jsonl; broken lines (a crash mid-write) are listed, not fatal."""
    records, bad = [], []
    if not path.exists():
        return LoadedResults(())
    for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(ResultRecord.from_mapping(json.loads(line)))
        except (ValueError, TypeError):
            bad.append(lineno)
    return LoadedResults(tuple(records), tuple(bad))


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON to a temp file beside ``path`` and rename it over (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_jsonable(dict(data)), indent=2, sort_keys=True))
    os.replace(tmp, path)


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

