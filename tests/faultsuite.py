"""Shared pieces of the fault suite: run the harness for real, then prove nothing leaked or was lost."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from harness.boot.lifecycle import processes_with_env, reap

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


class HarnessProcess:
    """`harness run` started in its own process group, as a terminal runs it, to be sent SIGINT.

    Its output goes to a file (``self.log``), so a phase can be read from it while it runs.
    """

    def __init__(self, out: Path, *args: str, env: dict[str, str] | None = None, sigint_ignored: bool = False) -> None:
        """``sigint_ignored``: start it as a script's ``harness run &`` does (SIGINT inherited ignored)."""
        self.out = out
        self.log = out.parent / f"{out.name}-harness.out"
        cmd = [sys.executable, "-m", "harness.cli", "run", "--out", str(out), "--devices", "cpu", *args]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **(env or {})}, start_new_session=True,
                                         preexec_fn=_ignore_sigint if sigint_ignored else None)
        self.pgid = self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, what: str, ready: Callable[[], bool], timeout_s: float = 300.0) -> None:
        """Poll until ``ready()``; fail with the output if the run ends or the time runs out first."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"never saw {what} (exit {self.proc.returncode}):\n{self.output()[-3000:]}")
            time.sleep(0.05)

    def interrupt(self, to_group: bool, limit_s: float = 60.0) -> float:
        """Send SIGINT (to the process group, or to the harness alone); seconds until the harness exited."""
        t0 = time.monotonic()
        if to_group:
            os.killpg(self.pgid, signal.SIGINT)
        else:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running {limit_s:.0f}s after SIGINT:\n{self.output()[-3000:]}") from None
        return time.monotonic() - t0

    def group_left(self) -> list[int]:
        """Pids still in the harness's process group (a builder or a runtime that did not leave)."""
        left = []
        for entry in Path("/proc").iterdir():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[2] == str(self.pgid) and fields[0] != "Z":
                left.append(int(entry.name))
        return left

    def kill(self) -> None:
        """Backstop for a failing test: nothing of this run may outlive it."""
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        reap("HARNESS_OUT", str(self.out))


def builders(zoo: Path) -> list[int]:
    """Live build_tiny.py processes building into ZOO."""
    found = []
    for pid in processes_with_env("HARNESS_ZOO_DIR", str(zoo)):
        try:
            if b"build_tiny.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def events(out: Path, kind: str) -> list[dict]:
    """Events of one kind ("boot", "stopped", ...) from the run's events.jsonl, in order."""
    path = out / "events.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in _parsed(lines) if e.get("event") == kind]


def result_count(out: Path) -> int:
    path = out / "results.jsonl"
    return len(_parsed(path.read_text().splitlines())) if path.exists() else 0


def _parsed(lines: list[str]) -> list[dict]:
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:  # a line being written right now
            continue
    return out


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
