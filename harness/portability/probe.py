"""Import probe: import every module in the runtime's Python with accelerator-only packages hidden."""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from harness.boot.procgroup import stop_group

# blocked-import: an accelerator-only package (the only kind that becomes a finding); missing-module:
# a dependency the runtime's environment lacks; probe-machinery: the import system's or the probe's
# own bookkeeping (``KeyError: 'sglang'``); error, timeout, crash: anything else, reported as counts.
FailureKind = Literal["blocked-import", "missing-module", "probe-machinery", "error", "timeout", "crash"]
_CHILD = Path(__file__).with_name("_probe_child.py")
_GRACE_S = 5.0  # the child's own alarm fires first; this covers imports stuck in C code
_LOG_TAIL = 2000


class ProbeError(RuntimeError):
    """The probe could not run at all (bad interpreter, child dies before importing anything)."""


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """What to import, with which Python, which packages to hide, and time limits."""

    python: str
    modules: tuple[str, ...]
    blocked: tuple[str, ...]
    sys_path: tuple[str, ...] = ()
    roots: tuple[str, ...] = ()
    module_timeout: float = 60.0
    total_timeout: float = 600.0
    env: Mapping[str, str] | None = None

    @classmethod
    def create(cls, python: str, modules: Sequence[str], blocked: Sequence[str], **options: Any) -> ProbeConfig:
        """Validate limits and build a config."""
        config = cls(python, tuple(modules), tuple(blocked), **options)
        for name in ("module_timeout", "total_timeout"):
            value = getattr(config, name)
            if not value > 0:
                raise ValueError(f"probe {name} must be a positive number of seconds, got {value!r}")
        return config


@dataclasses.dataclass(frozen=True)
class ProbeFailure:
    """One module that failed to import, with the frame that raised."""

    module: str
    kind: FailureKind
    exception: str
    message: str
    last_frame: str | None = None
    origin: str | None = None
    blocked_module: str | None = None
    missing_module: str | None = None
    seconds: float = 0.0

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ProbeFailure:
        """Build from a child's ``done`` record."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in fields})


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """Outcome of a probe run; ``skipped`` lists modules the overall time limit left out."""

    python: str
    blocked: tuple[str, ...]
    modules: int
    imported: int
    failures: tuple[ProbeFailure, ...]
    skipped: tuple[str, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        data = dataclasses.asdict(self)
        data["failures"] = [dataclasses.asdict(f) for f in self.failures]
        return data


def run_probe(config: ProbeConfig) -> ProbeResult:
    """Import each module in a child process; restart the child after a crash or hang."""
    started = time.monotonic()
    deadline = started + config.total_timeout
    remaining = list(config.modules)
    imported, failures = 0, []
    with tempfile.TemporaryDirectory(prefix="harness-probe-") as workdir:
        while remaining and time.monotonic() < deadline:
            records = _run_child(config, remaining, deadline, Path(workdir))
            handled = {r["module"] for r in records}
            if not handled:
                break  # deadline reached before the child started a module
            imported += sum(1 for r in records if r.get("ok"))
            failures += [ProbeFailure.from_record(r) for r in records if not r.get("ok")]
            remaining = [m for m in remaining if m not in handled]
    return ProbeResult(
        python=config.python,
        blocked=config.blocked,
        modules=len(config.modules),
        imported=imported,
        failures=tuple(failures),
        skipped=tuple(remaining),
        seconds=round(time.monotonic() - started, 3),
    )


def _run_child(config: ProbeConfig, modules: list[str], deadline: float, workdir: Path) -> list[dict[str, Any]]:
    """One child run; returns a record per module it started, synthesising timeouts and crashes."""
    settings = workdir / "probe.json"
    settings.write_text(json.dumps({
        "modules": modules, "blocked": list(config.blocked), "sys_path": list(config.sys_path),
        "roots": list(config.roots), "module_timeout": config.module_timeout,
    }))
    log_path = workdir / "child.log"
    env = {**os.environ, **(config.env or {}), "PYTHONDONTWRITEBYTECODE": "1"}
    with open(log_path, "w") as log:
        try:
            child = subprocess.Popen(
                [config.python, "-c", _CHILD.read_text(), str(settings)],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
                cwd=workdir, env=env, start_new_session=True,
            )
        except OSError as exc:
            raise ProbeError(
                f"cannot start runtime python {config.python!r}: {exc.strerror}; check --runtime-python"
            ) from None
        records = _collect(child, config, deadline)
    if not records and child.returncode not in (0, None):
        raise ProbeError(
            f"probe child exited with status {child.returncode} before importing anything; "
            f"its stderr ends with: {_tail(log_path)}"
        )
    if records and records[-1]["event"] == "start":
        records[-1] = _lost(records[-1]["module"], child.returncode, log_path)
    return [r for r in records if r["event"] == "done"]


def _collect(child: subprocess.Popen[str], config: ProbeConfig, deadline: float) -> list[dict[str, Any]]:
    """Read the child's JSON lines, killing it when a module or the whole run takes too long."""
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(child, lines), daemon=True)
    reader.start()
    records: list[dict[str, Any]] = []
    while True:
        in_module = bool(records) and records[-1]["event"] == "start"
        wait = min(config.module_timeout + _GRACE_S, max(deadline - time.monotonic(), 0.0))
        try:
            line = lines.get(timeout=wait if in_module else max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            stop_group(child)  # TERM, then KILL
            if in_module:
                records[-1] = {"event": "timeout", "module": records[-1]["module"]}
            break
        if line is None:
            break
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a stray write to the protocol descriptor; the child guards against it
    child.wait()
    reader.join(timeout=1)
    return [_timed_out(r["module"], config.module_timeout) if r["event"] == "timeout" else r for r in records]


def _pump(child: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        lines.put(line)
    lines.put(None)


def _timed_out(module: str, limit: float) -> dict[str, Any]:
    return {"event": "done", "module": module, "ok": False, "kind": "timeout",
            "exception": "Timeout", "message": f"import did not finish within {limit:.0f}s"}


def _lost(module: str, status: int | None, log_path: Path) -> dict[str, Any]:
    return {"event": "done", "module": module, "ok": False, "kind": "crash",
            "exception": "ChildExit", "message": f"interpreter exited with status {status} "
            f"while importing; stderr ends with: {_tail(log_path)}"}


def _tail(path: Path) -> str:
    text = path.read_text(errors="replace").strip()
    return text[-_LOG_TAIL:] or "(nothing)"
