"""The run store: run directories (manifest.json + results.jsonl), their history, and baselines.

A run directory is current (``reports/latest``) or archived under ``history/<run_id>/`` beside
it. "The same matrix" means the same matrix key (see ``matrix_key``): the axis options the run
was started with (order and shard split ignored), so last night's run of
``harness run --devices npu --models all`` is the baseline of tonight's, even when a new model
card added cells.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, final

from harness.errors import ConfigError
from harness.results import MANIFEST_SCHEMA, ResultRecord, read_results

RUN_STATUSES = ("running", "complete", "interrupted")
# Options that select what runs (and so define the matrix); every other option (--out, --shard,
# --runtime-python, -n, ...) only says where or how fast, and is ignored.
MATRIX_OPTIONS = ("--runtimes", "--devices", "--models", "--offload-modes", "--dtypes", "--tp", "--matrix",
                  "--simulate-devices", "--workaround", "-k", "-m")
LIST_OPTIONS = {"--runtimes", "--devices", "--models", "--offload-modes", "--dtypes", "--tp", "--simulate-devices"}
RUN_FILES = ("results.jsonl", "manifest.json")


class RunStoreError(ConfigError):
    """A run directory cannot be read; the message says which and how to fix it."""


@final
@dataclasses.dataclass(frozen=True)
class RunManifest:
    """manifest.json of any schema version, validated; ``raw`` keeps every field for display."""

    schema: int
    run_id: str
    status: str
    started: str | None
    ended: str | None
    argv: tuple[str, ...] | None
    raw: Mapping[str, Any]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], run_dir: Path) -> RunManifest:
        """Missing fields (older schemas, a crash before the end) get neutral values, never an error."""
        schema = data.get("schema", 1)
        schema = schema if isinstance(schema, int) and not isinstance(schema, bool) and schema > 0 else 1
        status = data.get("status") if data.get("status") in RUN_STATUSES else "unknown"
        argv = data.get("argv")
        argv_t = tuple(str(a) for a in argv) if isinstance(argv, list) else None
        return cls(schema, str(data.get("run_id") or run_dir.name), str(status), _opt_str(data.get("started")),
                   _opt_str(data.get("ended")), argv_t, dict(data))

    @property
    def newer_than_supported(self) -> bool:
        return self.schema > MANIFEST_SCHEMA


@final
@dataclasses.dataclass(frozen=True)
class StoredRun:
    """A run directory read back: its manifest and every readable record."""

    path: Path
    manifest: RunManifest
    records: tuple[ResultRecord, ...]
    skipped_lines: tuple[int, ...] = ()
    newer_records: int = 0

    @property
    def run_id(self) -> str:
        return self.manifest.run_id

    def cells(self) -> frozenset[str]:
        return frozenset(r.cell for r in self.records)


@final
@dataclasses.dataclass(frozen=True)
class RunRef:
    """A run in the history, known by its manifest only (records are read when needed)."""

    path: Path
    manifest: RunManifest

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.manifest.started or "", self.manifest.run_id)


def read_manifest(run_dir: Path) -> RunManifest:
    """The run's manifest; an absent or unreadable one gives a manifest with status 'unknown'."""
    try:
        data = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        data = {}
    return RunManifest.from_mapping(data if isinstance(data, Mapping) else {}, run_dir)


def require_results(run_dir: Path) -> None:
    """Refuse a directory without results.jsonl, saying what a run directory is."""
    if not (run_dir / "results.jsonl").is_file():
        raise RunStoreError(f"{run_dir}: no results.jsonl; pass a run directory written by `harness run` "
                            "(it holds manifest.json and results.jsonl)")


def load_run(run_dir: Path) -> StoredRun:
    """Read a run directory; it must hold results.jsonl."""
    require_results(run_dir)
    loaded = read_results(run_dir / "results.jsonl")
    return StoredRun(run_dir, read_manifest(run_dir), loaded.records, loaded.skipped_lines, loaded.newer)


def light_rows(results: Path, tail: bool = False) -> list[dict[str, Any]]:
    """Each record of a results.jsonl as a mapping without its bulky fields (details, logs, fingerprint).

    Records written by ResultWriter put ``details`` after every field a summary or a diff needs,
    so only each line's head is copied and all heads are parsed in one go; a line that does not fit
    (another field order, a truncated last line) is parsed on its own, and skipped if it is broken.
    ``tail``: keep the fields written after ``details`` too (``log_path`` to ``schema``: the
    fingerprint, workarounds, attempt, flake); only ``details`` is left out.
    """
    return [row for _, row in _numbered_rows(results, tail) if row is not None]


def _numbered_rows(results: Path, tail: bool) -> list[tuple[int, dict[str, Any] | None]]:
    """(line number, row) for each non-empty line; the row is None where the line is broken."""
    data = results.read_bytes()
    heads: list[bytes] = []
    spans: list[tuple[int, int, int]] = []
    pos, size, lineno = 0, len(data), 0
    while pos < size:
        end = data.find(b"\n", pos)
        end = size if end < 0 else end
        lineno += 1
        if end > pos:
            heads.append(_head(data, pos, end, tail))
            spans.append((lineno, pos, end))
        pos = end + 1
    try:
        rows = json.loads(b"[" + b",".join(heads) + b"]")
    except ValueError:
        rows = [_parse(h) for h in heads]
    out: list[tuple[int, dict[str, Any] | None]] = []
    for (n, start, end), row in zip(spans, rows, strict=True):
        if not isinstance(row, dict) or "status" not in row:
            row = _parse(data[start:end])
        out.append((n, row if isinstance(row, dict) else None))
    return out


def _head(data: bytes, pos: int, end: int, tail: bool) -> bytes:
    """A line up to its ``details`` (closed with ``}``), or with ``tail`` that line without its ``details``.

    A JSON string escapes its quotes, so ``, "details": `` appears unescaped only as a key.
    """
    cut = data.find(b', "details": ', pos, end)
    if cut < 0:
        return data[pos:end]
    if not tail:
        return data[pos:cut] + b"}"
    rest = data.rfind(b', "log_path": ', cut, end)
    return data[pos:cut] + data[rest:end] if rest > 0 else data[pos:end]


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


def load_light(run_dir: Path, tail: bool = False) -> StoredRun:
    """A run's records without details, logs or fingerprints (enough for a diff); fast on big runs.

    ``tail``: keep every field but ``details`` (see ``light_rows``).
    """
    require_results(run_dir)
    records, bad = [], []
    for lineno, row in _numbered_rows(run_dir / "results.jsonl", tail):
        try:
            records.append(ResultRecord.from_stored(row or {}))
        except (ValueError, TypeError):
            bad.append(lineno)
    return StoredRun(run_dir, read_manifest(run_dir), tuple(records), tuple(bad))


def history_runs(history_dir: Path, exclude: Iterable[Path] = ()) -> list[RunRef]:
    """Every run directory under ``history_dir`` that holds results, oldest first."""
    if not history_dir.is_dir():
        return []
    skip = {p.resolve() for p in exclude}
    refs = [RunRef(d, read_manifest(d)) for d in history_dir.iterdir()
            if d.is_dir() and (d / "results.jsonl").is_file() and d.resolve() not in skip]
    return sorted(refs, key=lambda r: r.sort_key)


def prune_history(history_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` runs under ``history_dir``; returns what was removed.

    Only directories that look like runs (holding results.jsonl or manifest.json) are touched.
    """
    if keep < 0:
        raise ConfigError(f"--keep must be 0 or more runs, got {keep}; e.g. --keep 30")
    if not history_dir.is_dir():
        return []
    runs = sorted((RunRef(d, read_manifest(d)) for d in history_dir.iterdir()
                   if d.is_dir() and any((d / n).exists() for n in RUN_FILES)), key=lambda r: r.sort_key)
    doomed = runs[:max(0, len(runs) - keep)]
    for ref in doomed:
        shutil.rmtree(ref.path)
    return [r.path for r in doomed]


def matrix_key(manifest: RunManifest, cells: Iterable[str] = ()) -> str:
    """What makes two runs comparable: ``argv:--devices=cpu,npu --models=all`` and the like.

    In order: an explicit ``matrix_key`` in the manifest (merged runs), the matrix options of its
    argv (values sorted, ``--out``/``--shard`` and the like ignored), else the set of cell ids.
    """
    explicit = manifest.raw.get("matrix_key")
    if isinstance(explicit, str) and explicit:
        return explicit
    if manifest.argv is not None:
        return "argv:" + " ".join(f"{k}={v}" for k, v in matrix_options(manifest.argv))
    digest = hashlib.sha1("\n".join(sorted(set(cells))).encode()).hexdigest()[:12]
    return f"cells:{digest}"


def matrix_options(argv: Sequence[str]) -> list[tuple[str, str]]:
    """The matrix-defining options of a command line, normalised: ``[("--devices", "cpu,npu")]``."""
    found: dict[str, list[str]] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in MATRIX_OPTIONS:
            if not eq:
                value = argv[i + 1] if i + 1 < len(argv) else ""
                i += 1
            parts = value.split(",") if name in LIST_OPTIONS else [value]
            found.setdefault(name, []).extend(p.strip() for p in parts if p.strip())
        i += 1
    return [(k, ",".join(sorted(set(found[k])))) for k in MATRIX_OPTIONS if k in found]


def find_baseline(current: StoredRun, history_dir: Path, refs: Sequence[RunRef] | None = None) -> tuple[Path | None, str]:
    """The newest complete run in ``history_dir`` (or ``refs``) with the current run's matrix key, and why."""
    key = matrix_key(current.manifest, current.cells())
    if refs is None:
        refs = history_runs(history_dir, exclude=[current.path])
    candidates = [r for r in refs if r.manifest.run_id != current.run_id]
    if not candidates:
        return None, f"no earlier run in {history_dir}"
    for ref in reversed(candidates):
        if ref.manifest.status != "complete":
            continue
        cells = _cell_ids(ref.path) if key.startswith("cells:") and not ref.manifest.argv else ()
        if matrix_key(ref.manifest, cells) == key:
            return ref.path, f"newest complete run in history with the same matrix ({describe_key(key)})"
    return None, f"none of the {len(candidates)} run(s) in {history_dir} is a complete run of the same matrix ({describe_key(key)})"


def describe_key(key: str) -> str:
    """A matrix key for people: the options, or 'the same set of cells'."""
    if key.startswith("argv:"):
        return key[5:] or "default options"
    if key.startswith("cells:"):
        return "the same set of cells"
    return key


def _cell_ids(run_dir: Path) -> list[str]:
    return [str(row.get("cell")) for row in light_rows(run_dir / "results.jsonl")]


def _opt_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
