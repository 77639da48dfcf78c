"""The matrix benchmark's maths and output; fast, no runtimes and no timing assertions."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from benchmarks import bench_matrix
from benchmarks.packing import (
    CellTime,
    RunFiles,
    TimingEvent,
    analyse,
    bounds,
    cell_times,
    check_compute,
    clip,
    device_slots,
    overhead,
    packing_bound,
    process_spans,
    union_length,
)
from benchmarks.procmon import classify


def test_packing_bound_is_the_longest_cell_or_the_spread_whichever_is_larger() -> None:
    assert packing_bound([4.0, 3.0, 3.0], slots=2) == 5.0
    assert packing_bound([9.0, 1.0], slots=2) == 9.0
    assert packing_bound([2.0, 2.0, 2.0], slots=1) == 6.0
    assert packing_bound([2.0, 2.0], slots=0) == 4.0  # no xdist: one slot
    assert packing_bound([], slots=4) == 0.0


def test_slots_cpu_is_the_workers_an_accelerator_its_cards_over_tp_capped_by_workers() -> None:
    assert device_slots("cpu", workers=0, cards=1, tp=1) == 1
    assert device_slots("cpu", workers=2, cards=1, tp=1) == 2
    assert device_slots("npu", workers=8, cards=8, tp=2) == 4
    assert device_slots("npu", workers=2, cards=8, tp=1) == 2
    assert device_slots("cuda", workers=4, cards=1, tp=2) == 1  # never below one


def test_union_and_clip() -> None:
    assert union_length([(0, 2), (1, 3), (5, 6)]) == 4.0
    assert union_length([(0, 10), (2, 3)]) == 10.0
    assert union_length([]) == 0.0
    assert clip([(0, 2), (3, 9), (10, 11)], 1, 5) == [(1, 2), (3, 5)]


def cell(name: str, device: str = "cpu", boot: float = 4.0, checks: float = 1.0, tp: int = 1) -> CellTime:
    return CellTime(name, device, tp, boot, checks, 0.0)


def test_run_bound_is_the_worst_device_or_everything_over_the_workers() -> None:
    cells = [cell("a"), cell("b"), cell("c", "npu", boot=9.0), cell("d", "npu")]
    b = bounds(cells, workers=2, cards={"cpu": 1, "npu": 2})
    assert b["devices"]["cpu"]["slots"] == 2 and b["devices"]["cpu"]["bound_s"] == 5.0
    assert b["devices"]["npu"]["bound_s"] == 10.0  # the longest npu cell
    assert b["devices"]["cpu"]["sum_cell_s"] == 10.0 and b["devices"]["cpu"]["boot_s"] == 8.0
    assert b["bound_s"] == 12.5  # 25 s of cells over 2 workers beats every device's own bound


def test_mixed_tp_on_an_accelerator_is_bounded_by_card_seconds() -> None:
    cells = [cell("a", "npu", tp=1), cell("b", "npu", tp=4), cell("c", "npu", tp=4)]
    b = bounds(cells, workers=8, cards={"npu": 4})
    assert b["devices"]["npu"]["bound_s"] == 11.25  # (5 + 20 + 20) card-seconds over 4 cards


def record(cell_id: str, check: str, status: str = "pass", boot_s: float = 4.0, duration_s: float = 1.0) -> dict:
    return {"cell": cell_id, "device": "cpu", "tp": 1, "check": check, "status": status, "boot_s": boot_s,
            "duration_s": duration_s, "metrics": {"reference_source": "cache"} if check == "logprob_parity" else {}}


def event(kind: str, label: str, t0: float, t1: float, pid: int = 1) -> TimingEvent:
    return TimingEvent(pid, kind, label, t0, t1)


def test_cell_times_take_boot_and_teardown_from_timing_and_skip_na_checks() -> None:
    run = RunFiles(
        records=(record("x", "accuracy"), record("x", "weight_parity", duration_s=2.0),
                 record("x", "logprob_parity", status="na", duration_s=0.5), record("y", "accuracy", status="na", boot_s=0)),
        manifest={}, timing=(event("boot", "x", 0, 3.5), event("stop", "x", 7, 7.25)))
    [x] = cell_times(run)  # y never booted and ran nothing
    assert (x.boot_s, x.checks_s, x.teardown_s, x.total_s) == (3.5, 3.0, 0.25, 6.75)


def test_overhead_is_wall_time_with_no_runtime_busy_and_says_where() -> None:
    run = RunFiles((), {}, (event("boot", "x", 1, 5), event("request", "GET", 4, 6), event("check", "t", 5, 8),
                            event("request", "POST", 6.5, 7.5), event("stop", "x", 8, 9)))
    o = overhead(run, start=0.0, end=10.0)
    assert o["runtime_busy_s"] == 7.0 and o["overhead_s"] == 3.0  # busy: [1, 6], [6.5, 7.5], [8, 9]
    assert (o["before_first_boot_s"], o["after_last_runtime_s"], o["between_cells_and_in_checks_s"]) == (1.0, 1.0, 1.0)
    assert check_compute(run) == pytest.approx(1.0)  # 3 s of check, 2 s of it waiting on requests


def test_process_spans_show_how_far_apart_the_workers_finished() -> None:
    run = RunFiles((), {}, (event("boot", "a", 2, 5, pid=1), event("stop", "a", 9, 10, pid=1),
                            event("boot", "b", 2, 6, pid=2), event("stop", "b", 7, 8, pid=2),
                            event("request", "GET", 0, 20, pid=2)))
    assert process_spans(run, 1.0) == {"spans": [[1.0, 9.0], [1.0, 7.0]], "end_imbalance_s": 2.0}
    assert process_spans(RunFiles((), {}, ()), 0.0) == {"spans": [], "end_imbalance_s": 0.0}


def test_check_compute_counts_only_requests_of_the_checks_own_process() -> None:
    run = RunFiles((), {}, (event("check", "t", 0, 4, pid=1), event("request", "POST", 0, 4, pid=2)))
    assert check_compute(run) == 4.0


def test_analyse_counts_workers_boots_statuses_and_reference_sources() -> None:
    run = RunFiles((record("x", "accuracy"), record("x", "logprob_parity")),
                   {"devices": {"cpu": {"count": 1}}},
                   (event("process", "controller", 0, 10), event("process", "worker", 0, 10, pid=2),
                    event("process", "worker", 0, 10, pid=3), event("boot", "x", 1, 5, pid=2), event("stop", "x", 7, 8, pid=2)))
    a = analyse(run, 0.0, 10.0)
    assert (a["workers"], a["boots"], a["cells"], a["statuses"]) == (2, 1, 1, {"pass": 2})
    assert a["bound_s"] == 7.0 and a["wall_over_bound"] == pytest.approx(10 / 7, rel=1e-3)
    assert a["reference_sources"] == {"cache": 1}


def test_classify_separates_pytest_workers_helpers_and_runtimes() -> None:
    table = {10: (1, 10), 11: (10, 10), 12: (10, 10), 13: (10, 13), 14: (13, 13), 15: (11, 15)}
    cmd = {11: "python -c import sys;exec(eval(sys.stdin.readline()))", 12: "python -c probe cuda"}
    classes = classify(10, table, lambda pid: cmd.get(pid, ""))
    assert classes == {10: "pytest", 11: "pytest", 12: "helper", 13: "runtime", 14: "runtime", 15: "runtime"}


@pytest.mark.parametrize(("extra", "want"), [
    (["-n", "2"], ["-n", "2", "-k", "accuracy"]),
    (["-k", "disk", "-n", "2"], ["-n", "2", "-k", "(disk) and (accuracy)"]),
    (["-kdisk"], ["-k", "(disk) and (accuracy)"]),
])
def test_one_run_per_check_selects_the_check_and_keeps_the_users_selection(extra: list[str], want: list[str]) -> None:
    assert bench_matrix.with_keyword(extra, "accuracy") == want


def test_harness_command_loads_the_timing_plugin_as_a_pytest_argument(tmp_path: Path) -> None:
    cmd = bench_matrix.harness_command(tmp_path, ["--devices", "cpu"], ["-n", "2"])
    assert cmd[1:6] == ["-m", "harness.cli", "run", "--out", str(tmp_path)]
    assert cmd[cmd.index("--") - 2:] == ["-n", "2", "--", "-p", "benchmarks.timing"]
    cmd = bench_matrix.harness_command(tmp_path, [], ["--no-progress", "--", "-x"])
    assert cmd[cmd.index("--"):] == ["--", "-p", "benchmarks.timing", "-x"]


def test_per_check_prediction_pays_startup_and_boots_once_per_check_and_the_checks_once() -> None:
    run = {"before_first_boot_s": 1.0, "after_last_runtime_s": 0.5, "workers": 0,
           "devices": {"cpu": {"boot_s": 8.0, "teardown_s": 1.0, "checks_s": 3.0}}}
    assert bench_matrix.predicted_per_check(run, checks=3) == 3 * 1.5 + 3 * 9.0 + 3.0
    assert bench_matrix.predicted_per_check({**run, "workers": 2}, checks=3) == 3 * 1.5 + (3 * 9.0 + 3.0) / 2


def test_axis_defaults_are_the_embedded_matrix_unless_a_matrix_file_is_given() -> None:
    args, extra = bench_matrix.parse_args(["-n", "2"])
    assert bench_matrix.axis_args(args) == ["--devices", "cpu", "--models", "tiny", "--offload-modes", "none,disk"]
    assert extra == ["-n", "2"]
    args, _ = bench_matrix.parse_args(["--matrix", "m.yaml", "--models", "tiny-llama"])
    assert bench_matrix.axis_args(args) == ["--matrix", "m.yaml", "--models", "tiny-llama"]


FAKE_HARNESS = r"""
import json, os, sys, time
from pathlib import Path
argv = sys.argv[1:]
out = Path(argv[argv.index("--out") + 1])
k = argv[argv.index("-k") + 1]
checks = [c for c in k.replace("(", " ").replace(")", " ").split() if c not in ("or", "and", "not")]
out.mkdir(parents=True)
timing = Path(os.environ["BENCH_TIMING_DIR"])
timing.mkdir(parents=True)
t = time.time()
events = [{"kind": "process", "label": "controller", "t0": t, "t1": t + 0.05}]
records = []
for i, cell in enumerate(["hf-cpu-a-none", "hf-cpu-a-disk"]):
    events += [{"kind": "boot", "label": cell, "t0": t + i * 0.02, "t1": t + i * 0.02 + 0.01},
               {"kind": "stop", "label": cell, "t0": t + i * 0.02 + 0.015, "t1": t + i * 0.02 + 0.016}]
    records += [{"cell": cell, "device": "cpu", "tp": 1, "check": c, "status": "pass", "boot_s": 0.01,
                 "duration_s": 0.001, "metrics": {}} for c in checks]
(out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
(out / "manifest.json").write_text(json.dumps({"devices": {"cpu": {"count": 1}}}))
(timing / f"{os.getpid()}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
"""


def test_the_benchmark_writes_json_with_every_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    real = bench_matrix.harness_command
    monkeypatch.setattr(bench_matrix, "harness_command",
                        lambda out, axes, extra: [sys.executable, "-c", FAKE_HARNESS, *real(out, axes, extra)[3:]])
    monkeypatch.setattr(bench_matrix, "report_bench", lambda cells, runs: {
        "cells": cells, "runs": runs, "generate_s": 0.0, "cold_s": 1.0, "warm_s": 0.5, "command": "python -m harness.reports.bench"})
    out = tmp_path / "bench.json"
    assert bench_matrix.main(["--json", str(out), "--work", str(tmp_path / "work"), "-n", "2"]) == 0
    data = json.loads(out.read_text())
    assert {"schema", "started", "commit", "host", "matrix_args", "checks", "targets", "modes", "report", "summary"} <= set(data)
    assert data["matrix_args"][-2:] == ["-n", "2"]
    [grouped], [per_check] = data["modes"]["grouped"], data["modes"]["per-check"]
    [plain] = data["modes"]["grouped-no-ahead"]
    assert grouped["boots"] == plain["boots"] == 2 and per_check["boots"] == 2 * len(data["checks"])
    assert not grouped["problems"] and not plain["problems"]
    assert set(per_check["runs"]) == set(data["checks"])
    no_ahead = ["--boot-ahead", "0"]
    assert _has(plain["runs"]["all"]["command"], no_ahead) and not _has(grouped["runs"]["all"]["command"], no_ahead)
    assert all(_has(r["command"], no_ahead) for r in per_check["runs"].values())  # the status quo boots per test
    assert data["summary"]["speedup_vs_per_check_without_boot_ahead"] > 0
    run = grouped["runs"]["all"]
    for key in ("wall_s", "workers", "cells", "boots", "statuses", "devices", "bound_s", "wall_over_bound", "overhead_s",
                "before_first_boot_s", "after_last_runtime_s", "in_check_harness_compute_s", "memory", "command",
                "processes"):
        assert key in run, key
    assert run["devices"]["cpu"]["cells"] == 2 and run["statuses"] == {"pass": 2 * len(data["checks"])}
    assert {"harness_peak_rss_mib", "harness_tree_peak_rss_mib", "largest_process_hwm_mib"} <= set(run["memory"])
    assert set(data["summary"]["targets"]) == {"wall_over_bound", "speedup_vs_per_check", "report_render_s"}
    assert data["summary"]["predicted_speedup_same_boot_times"] > 0
    assert data["summary"]["targets"]["report_render_s"] == {"value": 1.0, "target": "< 3.0", "met": True}
    printed = capsys.readouterr().out
    assert "packing bound" in printed and "target speedup_vs_per_check" in printed and str(out) in printed


def _has(command: list[str], args: list[str]) -> bool:
    return any(command[i:i + len(args)] == args for i in range(len(command)))


def test_report_bench_renders_the_synthetic_history(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.reports.bench

    rendered = []

    def fake_render(latest: Path) -> float:
        (latest / "index.html").write_text("<html></html>")
        rendered.append(latest)
        return 0.25

    monkeypatch.setattr(harness.reports.bench, "timed_report", fake_render)
    got = bench_matrix.report_bench(cells=3, runs=2)
    assert (got["cells"], got["runs"], got["cold_s"], got["warm_s"], len(rendered)) == (3, 2, 0.25, 0.25, 3)
    assert got["command"] == "python -m harness.reports.bench --cells 3 --runs 2"


def test_report_bench_exports_every_generated_run_as_one_table(tmp_path: Path) -> None:
    import csv

    from harness.reports.bench import generate, timed_export

    latest = generate(tmp_path, cells=3, runs=3)
    timed_export(latest, tmp_path / "history.csv")
    with (tmp_path / "history.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 2 * 3  # cells x checks x runs
    assert len({r["run_id"] for r in rows}) == 3 and {r["check"] for r in rows} == {"accuracy", "weight_parity"}


def test_timing_plugin_is_inert_without_its_env_var(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_TIMING_DIR", raising=False)
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "benchmarks.timing", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not list(pytester.path.glob("*.jsonl"))


def test_timing_plugin_writes_one_file_per_process_with_check_intervals(pytester: pytest.Pytester,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = pytester.path / "timing"
    monkeypatch.setenv("BENCH_TIMING_DIR", str(folder))
    monkeypatch.setenv("PYTHONPATH", str(Path(bench_matrix.__file__).resolve().parent.parent))
    pytester.makepyfile(CHECK_REPORTED)
    pytester.runpytest_subprocess("-p", "benchmarks.timing", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    [f] = folder.glob("*.jsonl")
    events = [json.loads(line) for line in f.read_text().splitlines()]
    assert [e["kind"] for e in events] == ["process", "check"] and int(f.stem) != os.getpid()
    check = events[1]  # from the check-result hook only; the plain test adds nothing
    assert check["label"] == "hf-cpu-tiny-llama-none-accuracy" and abs(check["t1"] - check["t0"] - 0.25) < 1e-6


CHECK_REPORTED = """
from harness.checks import CheckResult
from harness.config.matrix import Cell


def test_reports_a_check(request):
    request.config.hook.pytest_harness_check_result(cell=Cell("hf", "cpu", "tiny-llama", "none"), check="accuracy",
                                                    result=CheckResult("pass", "ok"), seconds=0.25)


def test_plain():
    pass
"""
