"""Turn pytest reports of matrix tests into result records, and write them as they arrive."""
from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from pathlib import Path
from typing import Any

import pytest

from harness import __version__
from harness.checks import CheckResult
from harness.errors import RuntimeRequestError, RuntimeStartError
from harness.plugin.interrupts import sigint_after
from harness.plugin.selection import cell_of, check_of
from harness.redact import Redactor
from harness.redact_files import redact_tree
from harness.results import MANIFEST_SCHEMA, ResultRecord, ResultWriter, archive_previous, new_run_id, write_json_atomic

RECORD_PROPERTY = "harness_record"
RESULT_KEY = pytest.StashKey[CheckResult]()
NA_KEY = pytest.StashKey[str]()
RUNTIME_INFO_KEY = pytest.StashKey[dict[str, Any]]()


def record_data(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> dict[str, Any] | None:
    """The record of a matrix test's outcome, or None when this phase adds nothing."""
    cell, check = cell_of(item), check_of(item)
    if cell is None or check is None:
        return None
    if report.when == "teardown" or (report.when == "setup" and report.passed):
        return None
    data: dict[str, Any] = {**cell.as_dict(), "cell": cell.id, "check": check, "duration_s": round(report.duration, 3)}
    info: dict[str, Any] = item.stash.get(RUNTIME_INFO_KEY, {})
    data.update(info)
    result = item.stash.get(RESULT_KEY, None)
    if report.skipped:
        na = item.stash.get(NA_KEY, None)
        data.update(status="na" if na or (result and result.status == "na") else "skipped",
                    reason=na or _skip_reason(report))
        if result is not None:
            data.update(metrics=dict(result.metrics), details=dict(result.details))
    elif result is not None and call.excinfo is None:
        data.update(status="pass", reason=result.reason, metrics=dict(result.metrics), details=dict(result.details))
    elif result is not None and result.status == "fail":
        data.update(status="fail", reason=result.reason, metrics=dict(result.metrics), details=dict(result.details))
    else:
        data.update(_error_fields(call.excinfo))
    return data


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ").removeprefix("N/A: ")


def _error_fields(excinfo: pytest.ExceptionInfo[BaseException] | None) -> dict[str, Any]:
    if excinfo is None:
        return {"status": "error", "reason": "error: unknown"}
    exc = excinfo.value
    if isinstance(exc, (RuntimeStartError, RuntimeRequestError)):
        return {"status": "error", "reason": f"{exc.kind}: {exc.detail}",
                "log_path": str(exc.log_path) if exc.log_path else None, "log_tail": exc.log_tail or None}
    return {"status": "error", "reason": f"error: {type(exc).__name__}: {exc}"}


class ResultRecorder:
    """Writes records and the manifest; registered on the process that receives reports."""

    def __init__(self, out_dir: Path, argv: list[str]) -> None:
        self.out_dir = out_dir
        self.run_id = new_run_id()
        self.writer = ResultWriter(out_dir / "results.jsonl")
        self.argv = argv
        self.started = _now()
        self.count = 0
        self.started_writing = False
        self.redactor = Redactor.from_sources(os.environ)  # secrets never reach results or manifest

    def begin(self) -> None:
        """Begin a fresh run directory; a previous run there moves to ``../history/<run_id>/``."""
        with sigint_after():  # Ctrl-C here would leave a run directory without its manifest
            archive_previous(self.out_dir)
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.writer.path.touch()  # a run stopped before its first result still has one, so it renders
            self._manifest("running")
            self.started_writing = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == RECORD_PROPERTY:
                if not self.started_writing:
                    self.begin()
                self.writer.write(ResultRecord.from_mapping({**self.redactor.value(value), "run_id": self.run_id}))
                self.count += 1

    def finish(self, exitstatus: int, devices: dict[str, Any]) -> None:
        status = "interrupted" if exitstatus == pytest.ExitCode.INTERRUPTED else "complete"
        self._manifest(status, devices=devices, ended=_now(), exitstatus=int(exitstatus))
        _, failed = redact_tree(self.out_dir, self.redactor)  # every runtime has stopped: logs, events, portability.json
        for path, why in failed:
            print(f"harness: could not mask secrets in {path} ({why}); delete it or fix its permissions "
                  "before uploading the run directory", file=sys.stderr)

    def _manifest(self, status: str, **extra: Any) -> None:
        write_json_atomic(self.out_dir / "manifest.json", {
            "schema": MANIFEST_SCHEMA, "run_id": self.run_id, "status": status, "started": self.started,
            "harness": __version__, "python": sys.version.split()[0], "host": platform.node(),
            "platform": platform.platform(), "argv": self.redactor.value(self.argv), "versions": _versions(), **extra,
        })


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for pkg in ("pytest", "pytest-xdist", "numpy", "torch", "transformers", "accelerate"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out
