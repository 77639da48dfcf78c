"""The portability check as a matrix test: which baseline applies, ``<run dir>/portability.json``, the verdict.

``suites/test_portability.py`` runs ``check_runtime`` once per runtime of the matrix and stores
each result with ``record``; the report reads the file back. Nothing here imports pytest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.portability.check import PortabilityOptions, run_portability
from harness.portability.locate import locate_runtime
from harness.portability.profile import PROFILES
from harness.results import write_json_atomic

RUN_FILE = "portability.json"
RUN_SCHEMA = "harness.portability.run/1"
SHIPPED_BASELINES = Path(__file__).resolve().parent / "baselines"
BASELINE_ENV = "HARNESS_PORTABILITY_BASELINE"
SUPPRESSIONS_ENV = "HARNESS_PORTABILITY_SUPPRESSIONS"
PROBE_ENV = "HARNESS_PORTABILITY_PROBE"
FAIL_ON_ENV = "HARNESS_PORTABILITY_FAIL_ON"  # severities whose new findings fail, e.g. "breaks,option"
_LISTED = 20  # new findings spelled out in a failure message


@dataclasses.dataclass(frozen=True)
class BaselineChoice:
    """The baseline file a runtime version is checked against (None: accept nothing), and why."""

    path: Path | None
    note: str
    write_to: Path  # where accepting this version's findings writes the keys

    def as_dict(self) -> dict[str, str | None]:
        return {"path": str(self.path) if self.path else None, "note": self.note, "write_to": str(self.write_to)}


def version_key(version: str) -> tuple[int, ...]:
    """Numeric parts of a version, for ordering: ``"0.32.0+cpu"`` -> ``(0, 32, 0)``."""
    return tuple(int(n) for n in re.findall(r"\d+", version.split("+", 1)[0]))


def baseline_in(directory: Path, runtime: str, version: str | None) -> tuple[Path | None, str]:
    """``<runtime>-<version>.json`` in ``directory``, else the newest one of an older version.

    With ``sglang-0.5.23.json`` there, SGLang 0.5.24 is checked against it: what 0.5.24 adds is new.
    """
    if version and (directory / f"{runtime}-{version}.json").is_file():
        return directory / f"{runtime}-{version}.json", f"baseline for {runtime} {version}"
    older = []
    for path in directory.glob(f"{runtime}-*.json"):
        found = path.stem[len(runtime) + 1:]
        if version and found[:1].isdigit() and version_key(found) < version_key(version):
            older.append((version_key(found), path))
    if older:
        path = max(older)[1]
        return path, f"no baseline for {runtime} {version}; using the newest older one, {path.name}"
    return None, f"no baseline for {runtime} {version or '(version unknown)'} in {directory}"


def choose_baseline(runtime: str, version: str | None, environ: Mapping[str, str]) -> BaselineChoice:
    """``$HARNESS_PORTABILITY_BASELINE`` (a file, or a directory of ``<runtime>-<version>.json``), else the shipped ones."""
    given = environ.get(BASELINE_ENV)
    own = f"{runtime}-{version or 'unknown'}.json"
    if given:
        path = Path(given)
        if path.is_dir():
            found, why = baseline_in(path, runtime, version)
            return BaselineChoice(found, f"{BASELINE_ENV}: {why}", path / own)
        if not path.is_file():
            raise ValueError(f"{BASELINE_ENV}={given!r} is neither a baseline file nor a directory of them; "
                             "fix the path or unset it to use the shipped baselines")
        return BaselineChoice(path, f"{BASELINE_ENV}={given}", path)
    found, why = baseline_in(SHIPPED_BASELINES, runtime, version)
    return BaselineChoice(found, f"shipped {why}" if found else why, SHIPPED_BASELINES / own)


def check_runtime(runtime: str, python: str, environ: Mapping[str, str], *, jobs: int | None = None) -> dict[str, Any]:
    """Statically check the runtime installed in ``python`` against its baseline; the result record.

    Raises RuntimeNotInstalled when ``python`` has no such package. The import probe runs
    only with ``HARNESS_PORTABILITY_PROBE=1`` (it imports every module: minutes, not seconds).
    """
    profile = PROFILES.get(runtime)
    version = locate_runtime(python, profile.top_package, profile.distribution).version
    choice = choose_baseline(runtime, version, environ)
    options = PortabilityOptions.create(
        runtime=runtime, python=python, baseline=str(choice.path) if choice.path else None,
        suppressions=environ.get(SUPPRESSIONS_ENV) or None,
        probe=environ.get(PROBE_ENV, "").lower() in ("1", "true", "yes", "on"), jobs=jobs,
        fail_on=[s.strip() for s in environ.get(FAIL_ON_ENV, "breaks").split(",") if s.strip()],
    )
    result = run_portability(options)
    return {**result, "python": python, "baseline": choice.as_dict(), "checked": _now()}


def skipped_entry(runtime: str, python: str, reason: str) -> dict[str, Any]:
    """The record of a runtime that could not be checked, so the report says it was not."""
    return {"runtime": runtime, "python": python, "skipped": reason, "checked": _now()}


def live_run_id(out_dir: Path) -> str | None:
    """The id of the run being written in ``out_dir`` (manifest status ``running``), else None."""
    try:
        manifest = json.loads((out_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest.get("run_id") if manifest.get("status") == "running" else None


def record(out_dir: Path, entry: Mapping[str, Any]) -> Path:
    """Merge one runtime's entry into ``out_dir/portability.json`` (locked, written atomically).

    Entries of another run (a different run id) are dropped, so runs are never mixed.
    """
    path = out_dir / RUN_FILE
    run_id = live_run_id(out_dir)
    with _locked(out_dir / f".{RUN_FILE}.lock"):
        try:
            current = json.loads(path.read_text())
        except (OSError, ValueError):
            current = {}
        runtimes = current.get("runtimes", {}) if isinstance(current, dict) and current.get("run_id") == run_id else {}
        write_json_atomic(path, {"schema": RUN_SCHEMA, "run_id": run_id,
                                 "runtimes": {**runtimes, entry["runtime"]: dict(entry)}})
    return path


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def failure_message(entry: Mapping[str, Any]) -> str | None:
    """Why the check fails (new findings of a failing severity, with where and how to accept them), or None."""
    new = [f for f in entry["findings"] if f["status"] == "new" and f.get("failing", True)]
    if not new:
        return None
    baseline = entry.get("baseline") or {}
    fail_on = "/".join(entry.get("fail_on") or ("breaks",))
    lines = [f"{entry['runtime']} {entry.get('version') or '(version unknown)'}: {len(new)} new portability "
             f"finding(s) ranked {fail_on}, not in the baseline ({baseline.get('note', 'none')}):"]
    for f in new[:_LISTED]:
        lines.append(f"  {f['path']}:{f['line']}  {f.get('severity', 'breaks')}  {f['rule']}  {f['symbol']}  "
                     f"[{'/'.join(f['platforms'])}]")
        lines.append(f"      {f['hint']}")
        if f.get("reach"):
            lines.append(f"      reach: {f['reach']}")
    if len(new) > _LISTED:
        lines.append(f"  … {len(new) - _LISTED} more in portability.json")
    probe = "" if entry.get("probe") else " --no-probe"
    lines.append(f"Fix them, or accept them: harness portability --runtime {entry['runtime']} --runtime-python "
                 f"{entry.get('python')}{probe} --write-baseline {baseline.get('write_to')}")
    return "\n".join(lines)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
