"""`harness export`: a run (or its history) as one CSV / Parquet table that reads back as results.jsonl."""
from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.reports.export import PARQUET_FIX, export_command, flatten_metrics
from tests.reportruns import rec, write_run

NOW_ID, OLD_ID, OLDER_ID = "20261124T020000Z-bbbb", "20261123T020000Z-aaaa", "20261122T020000Z-9999"


def _records(run_id: str) -> list:
    return [
        rec("hf-npu-tiny-llama-none", "accuracy", "fail", run_id, reason="wrong-answer: 5/12, 'Paris' -> \"Lyon\"",
            boot_s=12.5, fingerprint={"runtime": "hf", "version": "5.0.1"}, workarounds=("sglang-cpu-rotary-shim",)),
        rec("hf-npu-tiny-llama-none", "weight_parity", "pass", run_id,
            metrics={"max_abs": float("inf"), "tensors_compared": 41, "worst": ["a.w", "b.w"], "load": {"s": 2.25}}),
        rec("hf-cpu-tiny-llama-disk", "logprob_parity", "skipped", run_id, reason="no reference, line1\nline2"),
    ]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """latest/ and two archived runs of it in history/; returns latest."""
    write_run(tmp_path / "history" / OLDER_ID, _records(OLDER_ID)[:1], run_id=OLDER_ID, started="2026-11-22T02:00:00+00:00")
    write_run(tmp_path / "history" / OLD_ID, _records(OLD_ID)[:2], run_id=OLD_ID, started="2026-11-23T02:00:00+00:00")
    return write_run(tmp_path / "latest", _records(NOW_ID), run_id=NOW_ID, started="2026-11-24T02:00:00+00:00")


def _export(run_dir: Path, out: Path, **kw) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = export_command(run_dir, out, stdout=stdout, stderr=stderr, **kw)
    return code, stdout.getvalue(), stderr.getvalue()


def _stored(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines() if line.strip()]


def _same(cell: str, value: object) -> bool:
    """A CSV field read back equals the stored value (numbers as numbers, absent as empty)."""
    if value is None:
        return cell == ""
    if isinstance(value, bool):
        return cell == str(value)
    if isinstance(value, (int, float)):
        return float(cell) == float(value)
    if isinstance(value, list):
        return json.loads(cell) == value
    return cell == str(value)


def test_csv_round_trips_every_record_of_results_jsonl(runs: Path, tmp_path: Path):
    code, out, err = _export(runs, tmp_path / "run.csv")
    assert code == 0 and err == "" and out.strip().splitlines()[-1] == f"Exported 3 rows from 1 run(s) to {tmp_path / 'run.csv'}"
    with (tmp_path / "run.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    stored = _stored(runs)
    assert len(rows) == len(stored) == 3
    for row, line in zip(rows, stored):
        for field in ("run_id", "cell", "runtime", "device", "model", "offload", "dtype", "tp", "check", "status",
                      "reason", "duration_s", "boot_s", "attempt", "simulated"):
            assert _same(row[field], line[field]), (field, row[field], line[field])
        for key, value in line["metrics"].items():
            if isinstance(value, dict):
                assert all(_same(row[f"metric.{key}.{k}"], v) for k, v in value.items())
            else:
                assert _same(row[f"metric.{key}"], value), (key, row[f"metric.{key}"], value)
        assert row["run_started"] == "2026-11-24T02:00:00+00:00" and row["run_status"] == "complete"
    assert rows[0]["runtime_version"] == "5.0.1" and rows[0]["workarounds"] == "sglang-cpu-rotary-shim"
    assert rows[1]["metric.max_abs"] == "inf" and math.isinf(float(rows[1]["metric.max_abs"]))
    assert rows[2]["reason"] == "no reference, line1\nline2" and rows[2]["metric.pass_rate"] == ""


def test_history_is_one_table_told_apart_by_run_id_oldest_first(runs: Path, tmp_path: Path):
    code, out, _ = _export(runs, tmp_path / "all.csv", history=True)
    with (tmp_path / "all.csv").open(newline="") as f:
        ids = [row["run_id"] for row in csv.DictReader(f)]
    assert code == 0 and "from 3 run(s)" in out
    assert ids == [OLDER_ID] + [OLD_ID] * 2 + [NOW_ID] * 3


def test_history_without_a_history_directory_is_a_usage_error(tmp_path: Path):
    run = write_run(tmp_path / "alone", _records("r1"))
    code, _, err = _export(run, tmp_path / "x.csv", history=True)
    assert code == 2 and "no history directory" in err and "--history-dir" in err
    assert not (tmp_path / "x.csv").exists()


def test_no_results_and_unknown_suffix_are_usage_errors_that_say_the_fix(runs: Path, tmp_path: Path):
    code, _, err = _export(tmp_path / "nowhere", tmp_path / "x.csv")
    assert code == 2 and "no results.jsonl" in err
    code, _, err = _export(runs, tmp_path / "x.xlsx")
    assert code == 2 and "--format csv|parquet" in err and not (tmp_path / "x.xlsx").exists()
    code, _, err = _export(runs, tmp_path / "x.csv", fmt="xlsx")
    assert code == 2 and "'xlsx' is not known; choose one of: csv, parquet" in err


def test_torn_lines_are_skipped_and_counted(runs: Path, tmp_path: Path):
    with (runs / "results.jsonl").open("a") as f:
        f.write('{"run_id": "x", "cell": "hf-cpu-m-no')
    code, out, err = _export(runs, tmp_path / "run.csv", fmt="csv")
    assert code == 0 and "1 unreadable line(s)" in err and "Exported 3 rows" in out


def test_flatten_metrics_dots_nested_keys_and_keeps_lists_as_json():
    assert flatten_metrics({"a": 1, "load": {"s": 2, "deep": {"x": None}}, "worst": ["t1"]}) == {
        "metric.a": 1, "metric.load.s": 2, "metric.load.deep.x": None, "metric.worst": '["t1"]'}


def test_cli_exports_with_the_format_from_the_suffix(runs: Path, tmp_path: Path, capsys):
    assert main(["export", str(runs), "--out", str(tmp_path / "sub" / "t.csv")]) == 0
    assert capsys.readouterr().out.strip().endswith(f"to {tmp_path / 'sub' / 't.csv'}")
    assert (tmp_path / "sub" / "t.csv").read_text().startswith("run_id,run_started,")


def test_parquet_without_pyarrow_fails_with_the_install_fix(runs: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    code, _, err = _export(runs, tmp_path / "t.parquet")
    assert code == 2 and PARQUET_FIX in err and not (tmp_path / "t.parquet").exists()


def test_parquet_round_trips_with_typed_columns(runs: Path, tmp_path: Path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed (the 'parquet' extra); "
                             "the CSV tests cover the table, this one its Parquet form")
    code, _, _ = _export(runs, tmp_path / "all.parquet", history=True)
    table = pq.read_table(tmp_path / "all.parquet")
    rows = table.to_pylist()
    assert code == 0 and len(rows) == 6
    assert str(table.schema.field("tp").type) == "int64" and str(table.schema.field("simulated").type) == "bool"
    assert str(table.schema.field("metric.max_abs").type) == "double"
    stored = _stored(runs.parent / "history" / OLDER_ID) + _stored(runs.parent / "history" / OLD_ID) + _stored(runs)
    for row, line in zip(rows, stored):
        assert (row["run_id"], row["cell"], row["check"], row["status"], row["reason"], row["boot_s"]) == (
            line["run_id"], line["cell"], line["check"], line["status"], line["reason"], line.get("boot_s"))
        assert row["metric.pass_rate"] == line["metrics"].get("pass_rate")
    assert math.isinf(rows[-2]["metric.max_abs"]) and rows[-2]["metric.load.s"] == 2.25
