"""Stored runs for report tests: write a run directory (manifest + results.jsonl) from a few records."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from harness.results import ResultRecord, ResultWriter, write_json_atomic

ARGV = ["harness", "run", "--devices", "cpu,npu", "--models", "tiny-llama", "--out", "reports/latest"]
TODAY = dt.date(2026, 11, 24)


def rec(cell: str, check: str, status: str, run_id: str = "r1", **kw: Any) -> ResultRecord:
    """A record whose runtime/device/model/offload are read off the cell id (``hf-npu-tiny-llama-disk``)."""
    parts = cell.split("-")
    defaults: dict[str, Any] = {"metrics": {}, "reason": f"{check} {status}"}
    if check == "accuracy" and status in ("pass", "fail"):
        ok = 12 if status == "pass" else 5
        defaults["metrics"] = {"correct": ok, "total": 12, "pass_rate": round(ok / 12, 4)}
    return ResultRecord(run_id=run_id, cell=cell, runtime=parts[0], device=parts[1], model="-".join(parts[2:-1]),
                        offload=parts[-1], check=check, status=status, **{**defaults, **kw})


def write_run(run_dir: Path, records: list[ResultRecord], *, run_id: str = "r1", started: str = "2026-11-24T02:00:00+00:00",
              status: str = "complete", argv: list[str] | None = None, **manifest: Any) -> Path:
    """Write manifest.json and results.jsonl (records get ``run_id``); returns ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "manifest.json", {
        "schema": 1, "run_id": run_id, "status": status, "started": started, "ended": started,
        "argv": ARGV if argv is None else argv, "harness": "0.1.0", "host": "ci-1", **manifest})
    writer = ResultWriter(run_dir / "results.jsonl")
    for r in records:
        writer.write(ResultRecord.from_mapping({**r.__dict__, "run_id": run_id}))
    return run_dir


def nightly_pair(root: Path) -> tuple[Path, Path]:
    """Last night's run (in history) and tonight's: one regression and one fix between them.

    ``hf-npu-tiny-llama-none`` accuracy: pass → fail (the regression);
    ``hf-npu-tiny-llama-disk`` accuracy: fail → pass (the fix); everything else passes in both.
    """
    before = write_run(root / "history" / "20261123T020000Z-aaaa", [
        rec("hf-npu-tiny-llama-none", "accuracy", "pass"),
        rec("hf-npu-tiny-llama-none", "weight_parity", "pass"),
        rec("hf-npu-tiny-llama-disk", "accuracy", "fail", reason="wrong-answer: 5/12 correct"),
        rec("hf-npu-tiny-llama-disk", "weight_parity", "pass"),
        rec("hf-cpu-tiny-llama-none", "accuracy", "pass"),
    ], run_id="20261123T020000Z-aaaa", started="2026-11-23T02:00:00+00:00")
    now = write_run(root / "latest", [
        rec("hf-npu-tiny-llama-none", "accuracy", "fail", reason="wrong-answer: 5/12 correct; 'The capital of France is' -> ' Lyon'",
            details={"answers": [{"prompt": "The capital of France is", "expected": "Paris", "got": " Lyon.", "ok": False}]},
            log_tail="INFO booted\nWARN fallback kernel used"),
        rec("hf-npu-tiny-llama-none", "weight_parity", "pass"),
        rec("hf-npu-tiny-llama-disk", "accuracy", "pass"),
        rec("hf-npu-tiny-llama-disk", "weight_parity", "pass"),
        rec("hf-cpu-tiny-llama-none", "accuracy", "pass"),
    ], run_id="20261124T020000Z-bbbb", started="2026-11-24T02:00:00+00:00")
    return before, now


def waiver_file(path: Path, expires: str, cells: str = "hf-npu-tiny-llama-none", check: str = "accuracy") -> Path:
    path.write_text(
        "schema: 1\nwaivers:\n"
        f"  - cells: {cells!r}\n    check: {check}\n"
        "    reason: torch_npu 2.5 greedy sampling differs on this prompt; upstream fix pending\n"
        "    issue: https://github.com/example/llm-harness/issues/7\n"
        f"    expires: {expires}\n")
    return path
