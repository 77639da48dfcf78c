from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.results import ResultRecord, ResultWriter, read_results


def rec(**kw) -> ResultRecord:
    base = {"run_id": "r", "cell": "hf-cpu-m-none", "runtime": "hf", "device": "cpu", "model": "m", "offload": "none",
                "check": "accuracy", "status": "pass"}
    base.update(kw)
    return ResultRecord(**base)


def test_records_round_trip_and_non_finite_floats_stay_json(tmp_path: Path):
    w = ResultWriter(tmp_path / "results.jsonl")
    w.write(rec(metrics={"max_abs": float("inf")}))
    w.write(rec(check="weight_parity", status="fail", reason="parity: x"))
    line = (tmp_path / "results.jsonl").read_text().splitlines()[0]
    assert json.loads(line)["metrics"]["max_abs"] == "inf"
    loaded = read_results(tmp_path / "results.jsonl")
    assert [r.check for r in loaded.records] == ["accuracy", "weight_parity"]


def test_truncated_line_is_skipped_and_counted(tmp_path: Path):
    path = tmp_path / "results.jsonl"
    ResultWriter(path).write(rec())
    with path.open("a") as fh:
        fh.write('{"run_id": "r", "cell": "hf-cpu')  # a crash mid-write
    loaded = read_results(path)
    assert len(loaded.records) == 1 and loaded.skipped_lines == (2,)


def test_status_is_validated():
    with pytest.raises(ValueError, match="status must be one of"):
        rec(status="green")
