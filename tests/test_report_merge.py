"""`harness merge`: shard run directories become one run whose report reads as if it ran on one machine."""
from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.reports.builder import ReportInputs, render_run
from harness.reports.merge import merge_runs
from harness.reports.store import load_run, matrix_key
from harness.results import RECORD_SCHEMA
from tests.htmlgrid import parse_report
from tests.reportruns import ARGV, TODAY, rec, write_run

CELLS = [("hf-cpu-m-none", "pass"), ("hf-cpu-m-disk", "fail"), ("hf-npu-m-none", "pass"), ("hf-npu-m-disk", "pass")]


def records(cells):
    return [rec(c, check, s if check == "accuracy" else "pass", log_path=f"/elsewhere/logs/{c}.log")
            for c, s in cells for check in ("accuracy", "weight_parity")]


def shards(tmp_path, second_status="complete"):
    one = write_run(tmp_path / "s1", records(CELLS[:2]), run_id="s1", started="2026-11-24T02:00:00+00:00",
                    argv=[*ARGV, "--shard", "1/2"], ended="2026-11-24T03:00:00+00:00", host="runner-1")
    two = write_run(tmp_path / "s2", records(CELLS[2:]), run_id="s2", started="2026-11-24T01:59:00+00:00",
                    argv=[*ARGV, "--shard", "2/2"], status=second_status, host="runner-2")
    json_path = two / "manifest.json"
    json_path.write_text(json.dumps({**json.loads(json_path.read_text()), "ended": "2026-11-24T03:30:00+00:00"}))
    (one / "logs").mkdir()
    (one / "logs" / "hf-cpu-m-disk.log").write_text("python server.py\nTraceback\n")
    return one, two


def test_merged_run_has_one_run_id_every_record_and_a_merged_manifest(tmp_path):
    one, two = shards(tmp_path)
    out = merge_runs(tmp_path / "merged", [one, two])
    run = load_run(out)
    assert {r.run_id for r in run.records} == {run.run_id} and run.run_id not in ("s1", "s2")
    assert len(run.records) == 8 and {r.schema for r in run.records} == {RECORD_SCHEMA}
    m = run.manifest
    assert (m.status, m.started, m.ended) == ("complete", "2026-11-24T01:59:00+00:00", "2026-11-24T03:30:00+00:00")
    assert m.raw["host"] == "runner-1, runner-2" and [s["run_id"] for s in m.raw["shards"]] == ["s1", "s2"]
    assert matrix_key(m) == matrix_key(load_run(one).manifest)  # shards of one matrix: the shard split is ignored
    moved = next(r for r in run.records if r.cell == "hf-cpu-m-disk")
    assert moved.log_path == str((out / "logs" / "hf-cpu-m-disk.log").resolve()) and (out / "logs" / "hf-cpu-m-disk.log").is_file()


def test_an_interrupted_shard_makes_the_merged_run_interrupted(tmp_path):
    one, two = shards(tmp_path, second_status="interrupted")
    assert load_run(merge_runs(tmp_path / "merged", [one, two])).manifest.status == "interrupted"


def test_the_merged_report_is_the_single_machine_report(tmp_path):
    one, two = shards(tmp_path)
    single = write_run(tmp_path / "single", records(CELLS), run_id="single")
    merged = merge_runs(tmp_path / "merged", [two, one])  # shard order does not matter
    a = parse_report(render_run(ReportInputs(run_dir=single, today=TODAY, environ={})).index.read_text())
    b = parse_report(render_run(ReportInputs(run_dir=merged, today=TODAY, environ={})).index.read_text())
    assert (list(a.rows.items()), a.results, a.verdict_word, a.blockers) == (list(b.rows.items()), b.results, b.verdict_word, b.blockers)
    assert b.verdict_word == "NO-GO" and b.blockers == {"hf-cpu-m-disk::accuracy": "fail"}


def test_overlapping_shards_are_refused_with_the_fix(tmp_path):
    one, _ = shards(tmp_path)
    copy = write_run(tmp_path / "again", records(CELLS[:1]), run_id="again")
    with pytest.raises(ConfigError, match="hf-cpu-m-none / accuracy is in both .* pass each shard directory once"):
        merge_runs(tmp_path / "merged", [one, copy])
    with pytest.raises(ConfigError, match="OUT .* is also a shard"):
        merge_runs(one, [one])


def test_merging_again_archives_the_previous_merge_into_history(tmp_path, capsys):
    one, two = shards(tmp_path)
    assert main(["merge", str(tmp_path / "nightly" / "latest"), str(one), str(two)]) == 1  # NO-GO: a failing cell
    first = load_run(tmp_path / "nightly" / "latest").run_id
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"Report: {(tmp_path / 'nightly' / 'latest' / 'index.html').resolve()}"
    assert main(["merge", str(tmp_path / "nightly" / "latest"), str(one), str(two)]) == 1
    assert (tmp_path / "nightly" / "history" / first / "results.jsonl").is_file()
    page = parse_report((tmp_path / "nightly" / "latest" / "index.html").read_text())
    assert page.diff == {"still-failing": ["hf-cpu-m-disk::accuracy"]}  # compared with the previous merged night
    assert main(["merge", str(tmp_path / "x"), str(tmp_path / "missing")]) == 2
    assert "no results.jsonl" in capsys.readouterr().err
