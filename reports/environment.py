"""The environment fingerprint: what the run ran on (manifest) and what each runtime reported."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, final

from harness.redact import Redactor
from harness.results import ResultRecord

# Keys shown first, in this order, when a fingerprint has them (matched on the last dotted part).
KEY_FIELDS = ("runtime", "version", "commit", "git_commit", "torch", "torch_npu", "cann", "driver", "devices",
              "device_names", "harness")


@final
@dataclasses.dataclass(frozen=True)
class FingerprintGroup:
    """One distinct runtime fingerprint and the cells that reported it."""

    rows: tuple[tuple[str, str], ...]
    cells: tuple[str, ...]


@final
@dataclasses.dataclass(frozen=True)
class Environment:
    """Rows for the environment section, already redacted."""

    run: tuple[tuple[str, str], ...]
    packages: tuple[tuple[str, str], ...]
    devices: tuple[tuple[str, str, str, str], ...]  # (device, count, names, how)
    runtimes: tuple[FingerprintGroup, ...]
    shards: tuple[tuple[str, str, str, str], ...]  # (run_id, host, status, argv)
    key: tuple[tuple[str, str], ...] = ()  # the release-relevant versions, for the page header



def build_environment(manifest: Mapping[str, Any], records: Sequence[ResultRecord], redactor: Redactor) -> Environment:
    """The manifest and the distinct runtime fingerprints, flattened to rows and redacted."""
    m = redactor.value(dict(manifest))
    argv = m.get("argv")
    run = [("run id", m.get("run_id")), ("status", m.get("status")), ("started", m.get("started")),
           ("ended", m.get("ended")), ("harness", m.get("harness")), ("python", m.get("python")),
           ("platform", m.get("platform")), ("host", m.get("host")), ("schema", m.get("schema")),
           ("command", " ".join(map(str, argv)) if isinstance(argv, list) else None)]
    packages = sorted((str(k), str(v) if v else "not installed") for k, v in (m.get("versions") or {}).items())
    devices = [(str(d), _text(inv.get("count")), ", ".join(map(str, inv.get("names") or [])),
                _text(inv.get("how")) + (f" — {inv['error']}" if inv.get("error") else ""))
               for d, inv in (m.get("devices") or {}).items() if isinstance(inv, Mapping)]
    shards = [(_text(s.get("run_id")), _text(s.get("host")), _text(s.get("status")), " ".join(map(str, s.get("argv") or [])))
              for s in (m.get("shards") or []) if isinstance(s, Mapping)]
    groups = _fingerprints(records, redactor)
    return Environment(tuple((k, _text(v)) for k, v in run if v not in (None, "")), tuple(packages), tuple(devices),
                       groups, tuple(shards), _key_versions(groups, m))


HEADER_FIELDS = ("runtime", "version", "commit", "torch", "torch_npu", "cann", "driver")


def _key_versions(groups: Sequence[FingerprintGroup], manifest: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """``(("runtime", "hf"), ("torch", "2.5.1"), ...)``: each header field's distinct values over all runtimes."""
    out = []
    for name in HEADER_FIELDS:
        values = dict.fromkeys(v for g in groups for k, v in g.rows if k.rsplit(".", 1)[-1].lower() == name and v)
        if values:
            out.append((name, " / ".join(values)))
    if out:  # the run line already names the harness; repeat it only beside runtime versions
        out.append(("harness", _text(manifest.get("harness")) or "?"))
    return tuple(out)


def _fingerprints(records: Sequence[ResultRecord], redactor: Redactor) -> tuple[FingerprintGroup, ...]:
    groups: dict[str, list[str]] = {}
    rows_of: dict[str, tuple[tuple[str, str], ...]] = {}
    seen_cells: set[str] = set()
    for r in records:
        if r.cell in seen_cells or not r.fingerprint:
            continue
        seen_cells.add(r.cell)
        stable = {k: v for k, v in r.fingerprint.items() if not _volatile(k, v)}
        key = json.dumps(stable, sort_keys=True, default=str)
        if key not in rows_of:
            rows_of[key] = _rows(flatten(redactor.value(stable)))
        groups.setdefault(key, []).append(r.cell)
    return tuple(FingerprintGroup(rows_of[k], tuple(cells)) for k, cells in groups.items())


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """``{"versions": {"torch": "2.5"}}`` → ``{"versions.torch": "2.5"}``; lists joined by commas."""
    out: dict[str, str] = {}
    if isinstance(data, Mapping):
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(data, (list, tuple)):
        out[prefix] = ", ".join(_text(v) if not isinstance(v, (Mapping, list)) else json.dumps(v, default=str) for v in data)
    else:
        out[prefix] = _text(data)
    return out


def _rows(flat: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    def rank(key: str) -> tuple[int, str]:
        last = key.rsplit(".", 1)[-1].lower()
        return (KEY_FIELDS.index(last) if last in KEY_FIELDS else len(KEY_FIELDS), key)

    return tuple((k, flat[k]) for k in sorted(flat, key=rank))


def _volatile(key: str, value: Any) -> bool:
    """Per-boot timings (``load_s``) and ports differ on every cell; they would split every group."""
    return key.endswith("_s") and isinstance(value, (int, float)) or key in ("port", "pid")


def _text(value: Any) -> str:
    return "" if value is None else str(value)
