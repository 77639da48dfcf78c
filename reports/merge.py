"""Merge shard run directories (one matrix split across runners) into one run directory.

The merged run gets a new run_id; results.jsonl is every shard's records (rewritten with that
run_id, logs copied to ``OUT/logs/``); the manifest takes the earliest start and the latest end,
and its status is ``interrupted`` when any shard was not complete. Its report is rendered by the
same builder as any other run, so it reads as if the matrix ran on one machine.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.reports.portability import merge_portability
from harness.reports.store import RunStoreError, StoredRun, load_run, matrix_key
from harness.results import (
    MANIFEST_SCHEMA,
    RECORD_SCHEMA,
    ResultWriter,
    archive_previous,
    new_run_id,
    write_json_atomic,
)


def merge_runs(out: Path, shard_dirs: Sequence[Path]) -> Path:
    """Write the merged run to ``out`` (a run already there moves to ``../history/``); returns ``out``."""
    if not shard_dirs:
        raise RunStoreError("harness merge: no shard directories given; usage: harness merge OUT DIR [DIR ...]")
    out_r = out.resolve()
    if any(d.resolve() == out_r for d in shard_dirs):
        raise RunStoreError(f"harness merge: OUT {out} is also a shard; write the merged run to a new directory")
    shards = [load_run(d) for d in shard_dirs]
    _refuse_overlap(shards)
    archive_previous(out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    run_id = new_run_id()
    writer = ResultWriter(out / "results.jsonl")
    for shard in shards:
        for rec in shard.records:
            writer.write(dataclasses.replace(rec, run_id=run_id, log_path=_copy_log(rec.log_path, shard.path, out),
                                             schema=RECORD_SCHEMA))
    write_json_atomic(out / "manifest.json", merged_manifest(run_id, shards))
    merge_portability(out, shard_dirs, run_id)
    return out


def merged_manifest(run_id: str, shards: Sequence[StoredRun]) -> dict[str, Any]:
    """One manifest for the merged run: earliest start, latest end, interrupted if any shard was."""
    manifests = [s.manifest for s in shards]
    starts = [m.started for m in manifests if m.started]
    ends = [m.ended for m in manifests if m.ended]
    complete = all(m.status == "complete" for m in manifests)
    keys = sorted({matrix_key(s.manifest, s.cells()) for s in shards})
    raw = [m.raw for m in manifests]
    return {
        "schema": MANIFEST_SCHEMA, "run_id": run_id, "status": "complete" if complete else "interrupted",
        "started": min(starts, key=_instant) if starts else None, "ended": max(ends, key=_instant) if ends else None,
        "harness": _same_or_list(r.get("harness") for r in raw), "python": _same_or_list(r.get("python") for r in raw),
        "host": ", ".join(dict.fromkeys(str(r.get("host")) for r in raw if r.get("host"))),
        "platform": _same_or_list(r.get("platform") for r in raw),
        "argv": None, "matrix_key": keys[0] if len(keys) == 1 else "merged:" + " | ".join(keys),
        "versions": _merge_versions([r.get("versions") or {} for r in raw]),
        "devices": _merge_devices([r.get("devices") or {} for r in raw]),
        "shards": [{"run_id": m.run_id, "dir": str(s.path), "host": m.raw.get("host"), "status": m.status,
                    "started": m.started, "ended": m.ended, "argv": list(m.argv or [])} for s, m in zip(shards, manifests, strict=True)],
    }


def _refuse_overlap(shards: Sequence[StoredRun]) -> None:
    owner: dict[tuple[str, str], Path] = {}
    for shard in shards:
        for rec in shard.records:
            key = (rec.cell, rec.check)
            if key in owner and owner[key] != shard.path:
                raise RunStoreError(
                    f"harness merge: {rec.cell} / {rec.check} is in both {owner[key]} and {shard.path}; shards of one "
                    "matrix never overlap: pass each shard directory once, and only shards of the same run")
            owner[key] = shard.path


def _copy_log(log_path: str | None, shard_dir: Path, out: Path) -> str | None:
    """Copy a cell's log from the shard into ``out/logs`` (once) and return its new path."""
    if not log_path:
        return log_path
    src = Path(log_path)
    if not src.is_file():
        src = shard_dir / "logs" / src.name
    if not src.is_file():
        return log_path
    dest = out / "logs" / src.name
    if not dest.exists():
        shutil.copy2(src, dest)
    return str(dest.resolve())


def _instant(stamp: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _same_or_list(values: Any) -> Any:
    distinct = list(dict.fromkeys(v for v in values if v is not None))
    return distinct[0] if len(distinct) == 1 else (distinct or None)


def _merge_versions(all_versions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    keys = dict.fromkeys(k for v in all_versions for k in v)
    return {k: _same_or_list(v.get(k) for v in all_versions) for k in keys}


def _merge_devices(all_devices: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Each device kind from the shard that found the most of it."""
    out: dict[str, Any] = {}
    for devices in all_devices:
        for kind, inv in devices.items():
            if kind not in out or ((inv or {}).get("count") or 0) > ((out[kind] or {}).get("count") or 0):
                out[kind] = inv
    return out


