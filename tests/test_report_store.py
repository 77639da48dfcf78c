"""The run store: schema versions load, history is ordered and pruned, baselines match the matrix."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.reports.store import (
    find_baseline,
    history_runs,
    light_rows,
    load_light,
    load_run,
    matrix_key,
    matrix_options,
    prune_history,
    read_manifest,
)
from harness.results import RECORD_SCHEMA, ResultWriter, read_results
from tests.reportruns import rec, write_run

V1_LINE = {"run_id": "old", "cell": "hf-cpu-m-none", "runtime": "hf", "device": "cpu", "model": "m", "offload": "none",
           "check": "accuracy", "status": "pass", "reason": "", "metrics": {"max_abs": "inf"}, "duration_s": 0.1}


def test_records_are_written_with_the_current_schema(tmp_path):
    ResultWriter(tmp_path / "results.jsonl").write(rec("hf-cpu-m-none", "accuracy", "pass"))
    assert json.loads((tmp_path / "results.jsonl").read_text())["schema"] == RECORD_SCHEMA == 3


def test_schema_1_records_and_manifests_still_load(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps(V1_LINE) + "\n")
    (tmp_path / "manifest.json").write_text(json.dumps({"run_id": "old", "status": "complete"}))  # no schema field
    run = load_run(tmp_path)
    assert run.records[0].schema == 1 and run.records[0].metrics == {"max_abs": "inf"}
    assert run.manifest.schema == 1 and run.manifest.argv is None and run.newer_records == 0


def test_a_newer_schema_loads_its_known_fields_and_is_counted(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps({**V1_LINE, "schema": 9, "new_field": [1]}) + "\n")
    loaded = read_results(tmp_path / "results.jsonl")
    assert loaded.records[0].schema == 9 and loaded.newer == 1


def test_a_broken_schema_value_is_an_unreadable_line_not_a_crash(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps({**V1_LINE, "schema": "two"}) + "\n[1, 2]\n")
    assert read_results(tmp_path / "results.jsonl").skipped_lines == (1, 2)


def test_a_missing_manifest_reads_as_unknown(tmp_path):
    m = read_manifest(tmp_path)
    assert m.status == "unknown" and m.run_id == tmp_path.name


def test_light_rows_drop_details_and_survive_any_field_order_and_a_torn_line(tmp_path):
    path = tmp_path / "results.jsonl"
    ResultWriter(path).write(rec("hf-cpu-m-none", "accuracy", "pass", details={"answers": [{"got": "x"}]}))
    with path.open("a") as fh:
        fh.write(json.dumps({"details": {"a": 1}, **V1_LINE}) + "\n")  # details first: parsed whole
        fh.write('{"run_id": "r", "cell": "hf-cpu')  # a crash mid-write
    rows = light_rows(path)
    assert [r["cell"] for r in rows] == ["hf-cpu-m-none", "hf-cpu-m-none"]
    assert "details" not in rows[0] and rows[1]["status"] == "pass"


def test_light_rows_with_tail_keep_every_field_but_details(tmp_path):
    path = tmp_path / "results.jsonl"
    full = rec("hf-cpu-m-none", "accuracy", "fail", details={"answers": [{"got": ', "log_path": "x"'}]},
               log_path="/logs/a.log", log_tail='Traceback\n, "details": ', fingerprint={"version": "5.0"},
               workarounds=("w1",), attempt=2, flake="broken")
    ResultWriter(path).write(full)
    (row,) = light_rows(path, tail=True)
    assert "details" not in row and row["log_tail"] == full.log_tail and row["fingerprint"] == {"version": "5.0"}
    assert (row["workarounds"], row["attempt"], row["flake"], row["log_path"]) == (["w1"], 2, "broken", "/logs/a.log")
    assert "attempt" not in light_rows(path)[0]  # without tail: the head only


def test_load_light_counts_a_torn_line_by_its_line_number(tmp_path):
    write_run(tmp_path, [rec("hf-cpu-m-none", "accuracy", "pass"), rec("hf-cpu-m-disk", "accuracy", "pass")])
    with (tmp_path / "results.jsonl").open("a") as fh:
        fh.write("\n" + '{"run_id": "r", "cell": "hf-cpu')  # a blank line, then a crash mid-write
    run = load_light(tmp_path, tail=True)
    assert [r.cell for r in run.records] == ["hf-cpu-m-none", "hf-cpu-m-disk"] and run.skipped_lines == (4,)


def test_no_results_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no results.jsonl; pass a run directory"):
        load_run(tmp_path)


def test_matrix_key_ignores_where_and_how_and_value_order():
    a = ["harness", "run", "--devices", "npu,cpu", "--models=all", "--out", "/a", "--shard", "1/4", "-n", "2"]
    b = ["pytest", "suites/", "--models", "all", "--devices", "cpu,npu", "--harness-out", "/b", "--shard=2/4"]
    assert matrix_options(a) == matrix_options(b) == [("--devices", "cpu,npu"), ("--models", "all")]
    c = ["harness", "run", "--devices", "cpu,npu", "--models", "all", "-k", "disk"]
    assert matrix_options(c) != matrix_options(a)


def _history(root: Path) -> Path:
    hist = root / "history"
    write_run(hist / "a", [rec("hf-cpu-m-none", "accuracy", "pass")], run_id="a", started="2026-11-20T02:00:00+00:00")
    write_run(hist / "b", [rec("hf-cpu-m-none", "accuracy", "pass")], run_id="b", started="2026-11-21T02:00:00+00:00")
    write_run(hist / "c", [rec("hf-cpu-m-none", "accuracy", "pass")], run_id="c", started="2026-11-22T02:00:00+00:00",
              status="interrupted")
    write_run(hist / "d", [rec("hf-cpu-m-none", "accuracy", "pass")], run_id="d", started="2026-11-23T02:00:00+00:00",
              argv=["harness", "run", "--devices", "cuda"])
    return hist


def test_baseline_is_the_newest_complete_run_of_the_same_matrix(tmp_path):
    hist = _history(tmp_path)
    now = load_run(write_run(tmp_path / "latest", [rec("hf-cpu-m-none", "accuracy", "pass")], run_id="e"))
    path, why = find_baseline(now, hist)
    assert path == hist / "b"  # c was interrupted, d ran another matrix
    assert "same matrix" in why and "--devices=cpu,npu" in why


def test_no_baseline_says_why(tmp_path):
    now = load_run(write_run(tmp_path / "latest", [rec("hf-cpu-m-none", "accuracy", "pass")], argv=["harness", "run"]))
    assert find_baseline(now, tmp_path / "history") == (None, f"no earlier run in {tmp_path / 'history'}")
    _history(tmp_path)
    path, why = find_baseline(now, tmp_path / "history")
    assert path is None and "none of the 4 run(s)" in why


def test_without_argv_the_matrix_is_the_set_of_cells(tmp_path):
    hist = tmp_path / "history"
    write_run(hist / "x", [rec("hf-cpu-m-none", "accuracy", "pass")], run_id="x", argv=None)
    (hist / "x" / "manifest.json").write_text(json.dumps({"run_id": "x", "status": "complete", "started": "1"}))
    now = load_run(write_run(tmp_path / "latest", [rec("hf-cpu-m-none", "accuracy", "fail")], run_id="y"))
    (now.path / "manifest.json").write_text(json.dumps({"run_id": "y", "status": "complete", "started": "2"}))
    now = load_run(now.path)
    assert matrix_key(now.manifest, now.cells()).startswith("cells:")
    assert find_baseline(now, hist)[0] == hist / "x"


def test_history_is_oldest_first_and_prune_keeps_the_newest(tmp_path):
    hist = _history(tmp_path)
    (hist / "not-a-run").mkdir()
    assert [r.manifest.run_id for r in history_runs(hist)] == ["a", "b", "c", "d"]
    removed = prune_history(hist, keep=2)
    assert sorted(p.name for p in removed) == ["a", "b"]
    assert sorted(p.name for p in hist.iterdir()) == ["c", "d", "not-a-run"]
    with pytest.raises(ConfigError, match="--keep must be 0 or more"):
        prune_history(hist, keep=-1)
