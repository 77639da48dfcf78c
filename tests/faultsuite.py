"""Shared pieces of the fault suite: run the harness for real, then prove nothing leaked or was lost."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

from harness.lifecycle import processes_with_env

SCENARIO_PROPERTY = "fault_scenario"


def harness(out: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "harness.cli", "run", "--out", str(out), "--devices", "cpu", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def records(out: Path) -> dict[tuple[str, str], dict]:
    return {(r["cell"], r["check"]): r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}


def lines_lost(out: Path) -> int:
    """Lines of results.jsonl that do not parse (a torn write would show here)."""
    path = out / "results.jsonl"
    if not path.exists():
        return 0
    bad = 0
    for line in path.read_text().splitlines():
        try:
            json.loads(line)
        except ValueError:
            bad += 1
    return bad


def leases_held(lease_dir: Path) -> list[str]:
    """Lock files some process still holds (a leaked lease)."""
    held = []
    for lock in lease_dir.rglob("*.lock") if lease_dir.exists() else ():
        with open(lock, "a+b") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fh, fcntl.LOCK_UN)
            except OSError:
                held.append(str(lock))
    return held


def leaked(out: Path) -> list[int]:
    return processes_with_env("HARNESS_OUT", str(out))
