"""Benchmark a matrix run: wall time against the packing bound, and against one server per check.

    python benchmarks/bench_matrix.py                      # default: --devices cpu --models tiny --offload-modes none,disk
    python benchmarks/bench_matrix.py -n 2                 # any harness / pytest argument passes through
    python benchmarks/bench_matrix.py --matrix nightly.yaml --json out.json -- -k disk

Runs the matrix twice over the same cells, each time as a real `harness run` subprocess:

- ``grouped``: how the harness runs, every cell boots its runtime once and serves all its checks;
- ``per-check``: how runtimes test themselves today, a fresh server per check: one `harness run`
  per check with ``-k <check>``, so every (cell, check) boots its own runtime.

Both select the matrix checks with ``-k`` (tests that are not matrix cells, such as the
portability suite, run in neither). For each run it prints the wall time, per device
Σ(boot + checks + teardown), the packing bound (benchmarks/packing.py), wall / bound, the harness
overhead (wall time in which no runtime was booting, stopping or answering a request) and the
peak RSS of the harness's own processes (benchmarks/procmon.py); then the ratio between the two
patterns and the render time of a report over 2,000 cells × 30 runs (reports/bench.py).
Everything also goes to a JSON file (default benchmarks/results/<time>-<host>.json). Targets are
printed, never asserted; docs/performance.md explains every figure.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.packing import analyse, load_run
from benchmarks.procmon import TreeSampler

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"
SCHEMA = 1
AXES = ("runtimes", "devices", "models", "offload_modes", "dtypes", "tp")
DEFAULT_AXES = {"devices": "cpu", "models": "tiny", "offload_modes": "none,disk"}
TARGETS = {"wall_over_bound_max": 1.10, "speedup_vs_per_check_min": 3.0, "report_render_max_s": 3.0}
MODES = ("grouped", "grouped-no-ahead", "per-check")
NO_AHEAD = ["--boot-ahead", "0"]  # each cell boots only when its first check needs it


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(
        prog="python benchmarks/bench_matrix.py", description=__doc__.splitlines()[0], allow_abbrev=False,
        epilog="Unknown arguments (e.g. -n 2, --runtime-python hf=PATH) go to `harness run`.")
    for axis in AXES:
        p.add_argument(f"--{axis.replace('_', '-')}", dest=axis, default=None,
                       help=f"comma list (default: {DEFAULT_AXES.get(axis, 'the harness default')}, unless --matrix)")
    p.add_argument("--matrix", default=None, metavar="FILE", help="matrix file; axes not given come from it")
    p.add_argument("--modes", default=",".join(MODES), help="comma list of %(default)s")
    p.add_argument("--repeat", type=int, default=1, help="run the modes N times, alternating; figures use medians")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="where to write the results")
    p.add_argument("--work", type=Path, default=None, metavar="DIR", help="run directories (default: temporary, removed)")
    p.add_argument("--report-cells", type=int, default=2000, help="cells of the synthetic report benchmark")
    p.add_argument("--report-runs", type=int, default=30, help="runs of history of the synthetic report benchmark")
    p.add_argument("--no-report-bench", action="store_true", help="skip the report render benchmark")
    args, extra = p.parse_known_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(MODES):
        p.error(f"--modes takes a comma list of {', '.join(MODES)}, got {args.modes!r}")
    if args.repeat < 1:
        p.error(f"--repeat must be >= 1, got {args.repeat}")
    args.modes = modes
    return args, extra


def axis_args(args: argparse.Namespace) -> list[str]:
    """The axis options for `harness run`: given ones, else the benchmark's defaults (not with --matrix)."""
    out = ["--matrix", args.matrix] if args.matrix else []
    for axis in AXES:
        value = getattr(args, axis) or (None if args.matrix else DEFAULT_AXES.get(axis))
        if value is not None:
            out += [f"--{axis.replace('_', '-')}", value]
    return out


def with_keyword(extra: list[str], checks: str) -> list[str]:
    """``extra`` selecting only ``checks`` (a -k expression): a user's ``-k EXPR`` becomes ``-k (EXPR) and (checks)``."""
    out, expr, i = [], None, 0
    while i < len(extra):
        a = extra[i]
        if a == "-k" and i + 1 < len(extra):
            expr, i = extra[i + 1], i + 2
            continue
        if a.startswith("-k") and len(a) > 2:
            expr = a[2:]
        else:
            out.append(a)
        i += 1
    return out + ["-k", f"({expr}) and ({checks})" if expr else checks]


def harness_command(out: Path, axes: list[str], extra: list[str]) -> list[str]:
    """`harness run` with the timing plugin; pytest-only arguments after the user's ``--`` stay there."""
    plugin = ["-p", "benchmarks.timing"]
    if "--" in extra:
        cut = extra.index("--")
        tail = extra[:cut + 1] + plugin + extra[cut + 1:]
    else:
        tail = extra + ["--", *plugin]
    return [sys.executable, "-m", "harness.cli", "run", "--out", str(out), *axes, *tail]


def run_harness(command: list[str], folder: Path) -> dict[str, Any]:
    """Run one `harness run`, sampling its process tree; its output goes to ``folder/harness.log``."""
    timing = folder / "timing"
    env = {**os.environ, "BENCH_TIMING_DIR": str(timing),
           "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    folder.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    with (folder / "harness.log").open("wb") as log:
        start, t0 = time.time(), time.monotonic()
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        code = proc.wait()
        wall, end = time.monotonic() - t0, time.time()
        sampler.stop()
    figures = analyse(load_run(folder / "run", timing), start, start + wall)
    return {"command": command[1:], "returncode": code, **figures, "wall_s": round(wall, 3), "ended_at": end,
            "memory": sampler.result(), "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()], "log": str(folder / "harness.log")}


def run_mode(mode: str, work: Path, axes: list[str], extra: list[str], checks: tuple[str, ...]) -> dict[str, Any]:
    """One pattern over the matrix: one grouped run (with or without boot ahead), or one run per check.

    All run the matrix checks only. One server per check is how runtimes test themselves today:
    each test boots its own server when it starts, so it runs without boot ahead.
    """
    if mode.startswith("grouped"):
        ahead = [] if mode == "grouped" else NO_AHEAD
        runs = {"all": run_harness(harness_command(work / "run", axes, ahead + with_keyword(extra, " or ".join(checks))),
                                   work)}
    else:
        runs = {c: run_harness(harness_command(work / c / "run", axes, NO_AHEAD + with_keyword(extra, c)), work / c)
                for c in checks}
    wall = sum(r["wall_s"] for r in runs.values())
    problems = [f"{name}: harness exited {r['returncode']}" for name, r in runs.items() if r["returncode"] not in (0, 1)]
    problems += [f"{name}: {n} {s}" for name, r in runs.items() for s, n in r["statuses"].items() if s in ("fail", "error")]
    return {"mode": mode, "wall_s": round(wall, 3), "boots": sum(r["boots"] for r in runs.values()),
            "records": sum(sum(r["statuses"].values()) for r in runs.values()), "problems": problems, "runs": runs}


def report_bench(cells: int, runs: int) -> dict[str, Any]:
    """reports/bench.py's synthetic history, rendered cold (no trend cache) and warm."""
    from harness.reports.bench import generate, timed_report
    from harness.reports.trends import CACHE_DIR

    root = Path(tempfile.mkdtemp(prefix="harness-report-bench-"))
    try:
        t0 = time.monotonic()
        latest = generate(root, cells, runs)
        generated = time.monotonic() - t0
        times = {}
        for name in ("cold", "warm", "cold_again"):
            if name == "cold_again":
                shutil.rmtree(root / "history" / CACHE_DIR, ignore_errors=True)
            (latest / "index.html").unlink(missing_ok=True)
            times[name] = timed_report(latest)
            if not (latest / "index.html").exists():
                raise RuntimeError(f"`harness report {latest}` wrote no index.html; run it by hand to see why")
        return {"cells": cells, "runs": runs, "generate_s": round(generated, 2),
                "cold_s": round(min(times["cold"], times["cold_again"]), 3), "warm_s": round(times["warm"], 3),
                "command": f"python -m harness.reports.bench --cells {cells} --runs {runs}"}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def predicted_per_check(run: dict[str, Any], checks: int) -> float:
    """The one-server-per-check wall time this grouped run predicts, if every boot cost what it cost here.

    Each of the ``checks`` runs pays the start-up and wind-down and boots and stops every cell; the
    check calls are paid once; cell work spreads over the slots as in the grouped run.
    """
    fixed = run["before_first_boot_s"] + run["after_last_runtime_s"]
    lifecycle = sum(d["boot_s"] + d["teardown_s"] for d in run["devices"].values())
    calls = sum(d["checks_s"] for d in run["devices"].values())
    return checks * fixed + (checks * lifecycle + calls) / max(1, run["workers"])


def summarise(modes: dict[str, list[dict[str, Any]]], report: dict[str, Any] | None, checks: int) -> dict[str, Any]:
    """Medians over repeats, the ratio between the patterns, and each target met or missed."""
    med = {m: statistics.median(r["wall_s"] for r in runs) for m, runs in modes.items()}
    grouped = [r["runs"]["all"] for r in modes.get("grouped", [])]
    bound_ratio = round(statistics.median(r["wall_over_bound"] or 0 for r in grouped), 4) if grouped else None
    both = {"grouped", "per-check"} <= set(med) and med["grouped"]
    speedup = round(med["per-check"] / med["grouped"], 3) if both else None
    no_ahead = {"grouped-no-ahead", "per-check"} <= set(med) and med["grouped-no-ahead"]
    speedup_no_ahead = round(med["per-check"] / med["grouped-no-ahead"], 3) if no_ahead else None
    plain = [r["runs"]["all"] for r in modes.get("grouped-no-ahead", [])]
    plain_ratio = round(statistics.median(r["wall_over_bound"] or 0 for r in plain), 4) if plain else None
    ratios = [predicted_per_check(r, checks) / r["wall_s"] for r in plain or grouped]
    predicted = round(statistics.median(ratios), 3) if ratios else None
    render = report["cold_s"] if report else None
    return {"median_wall_s": {m: round(v, 3) for m, v in med.items()}, "speedup_vs_per_check": speedup,
            "speedup_vs_per_check_without_boot_ahead": speedup_no_ahead,
            "predicted_speedup_same_boot_times": predicted, "wall_over_bound": bound_ratio,
            "wall_over_bound_without_boot_ahead": plain_ratio,
            "targets": {"wall_over_bound": _target(bound_ratio, "<=", TARGETS["wall_over_bound_max"]),
                        "speedup_vs_per_check": _target(speedup, ">=", TARGETS["speedup_vs_per_check_min"]),
                        "report_render_s": _target(render, "<", TARGETS["report_render_max_s"])}}


def _target(value: float | None, op: str, limit: float) -> dict[str, Any]:
    met = None if value is None else {"<=": value <= limit, ">=": value >= limit, "<": value < limit}[op]
    return {"value": value, "target": f"{op} {limit}", "met": met}


def describe_run(name: str, r: dict[str, Any]) -> list[str]:
    """Human lines for one `harness run`."""
    mem = r["memory"]
    lines = [f"  {name}: wall {r['wall_s']:.1f} s, {r['cells']} cells, {r['boots']} boots, "
             f"{r['workers'] or 'no'} xdist workers, {_statuses(r['statuses'])}"]
    for device, d in r["devices"].items():
        lines.append(f"    {device}: Σ boot {d['boot_s']:.1f} + Σ checks {d['checks_s']:.1f} + Σ teardown "
                     f"{d['teardown_s']:.1f} = {d['sum_cell_s']:.1f} s over {d['slots']} slot(s), longest cell "
                     f"{d['longest_cell_s']:.1f} s -> bound {d['bound_s']:.1f} s")
    tail = r["processes"]["end_imbalance_s"]
    lines.append(f"    packing bound {r['bound_s']:.1f} s, wall / bound {r['wall_over_bound'] or 0:.3f}"
                 + (f"; the workers' last cells ended {tail:.1f} s apart" if r["workers"] > 1 else ""))
    lines.append(f"    harness overhead {r['overhead_s']:.1f} s ({r['overhead_frac']:.1%} of wall): "
                 f"{r['before_first_boot_s']:.1f} before the first boot, {r['after_last_runtime_s']:.1f} after the "
                 f"last runtime, {r['between_cells_and_in_checks_s']:.1f} between (of which harness compute inside "
                 f"checks {r['in_check_harness_compute_s']:.1f})")
    lines.append(f"    peak RSS, runtimes excluded: pytest processes {mem['harness_peak_rss_mib']:.0f} MiB, with helpers "
                 f"{mem['harness_tree_peak_rss_mib']:.0f} MiB (controller high-water {mem['controller_hwm_mib']:.0f} MiB; "
                 f"largest runtime {mem['largest_process_hwm_mib']['runtime']:.0f} MiB, for scale)")
    return lines


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "no records"


def describe(result: dict[str, Any]) -> str:
    lines = [f"matrix: harness run {' '.join(result['matrix_args'])}  (host {result['host']['name']}, "
             f"{result['host']['cpus']} CPUs, load {result['host']['load_before']})"]
    for mode, reps in result["modes"].items():
        for i, rep in enumerate(reps):
            label = mode + (f" #{i + 1}" if len(reps) > 1 else "")
            lines.append(f"{label}: {rep['wall_s']:.1f} s in all, {rep['boots']} boots, {rep['records']} records")
            lines += [x for name, r in rep["runs"].items() for x in describe_run(name, r)]
            lines += [f"  PROBLEM {p}" for p in rep["problems"]]
    if result["report"]:
        rb = result["report"]
        lines.append(f"report over {rb['cells']} cells x {rb['runs']} runs: cold {rb['cold_s']:.2f} s, warm "
                     f"{rb['warm_s']:.2f} s  ({rb['command']})")
    s = result["summary"]
    if s["wall_over_bound_without_boot_ahead"] is not None:
        lines.append(f"without boot ahead: wall / bound {s['wall_over_bound_without_boot_ahead']:.3f}"
                     + (f", speedup over one server per check {s['speedup_vs_per_check_without_boot_ahead']:.2f}x"
                        if s["speedup_vs_per_check_without_boot_ahead"] else ""))
    if s["predicted_speedup_same_boot_times"] is not None:
        measured = f"; measured {s['speedup_vs_per_check']:.2f}x with boot ahead" if s["speedup_vs_per_check"] else ""
        lines.append(f"one server per check, predicted from a grouped run's own boot times without overlap (same "
                     f"load): {s['predicted_speedup_same_boot_times']:.2f}x{measured}")
    for name, t in s["targets"].items():
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        lines.append(f"target {name}: {t['value']} (want {t['target']}): {verdict}")
    return "\n".join(lines)


def host_info() -> dict[str, Any]:
    return {"name": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "load_before": [round(x, 2) for x in os.getloadavg()],
            "runtime_threads": os.environ.get("HARNESS_RUNTIME_THREADS") or "1 (default)"}


def git_commit() -> str | None:
    """HEAD's commit, with ``+dirty`` when the tree has changes (read-only git commands)."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)

    try:
        head, status = git("rev-parse", "HEAD"), git("status", "--porcelain")
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "") if head.returncode == 0 else None


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(list(sys.argv[1:] if argv is None else argv))
    from harness.checks import CHECKS

    axes = axis_args(args)
    work = args.work or Path(tempfile.mkdtemp(prefix="harness-bench-matrix-"))
    result: dict[str, Any] = {"schema": SCHEMA, "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                              "commit": git_commit(), "host": host_info(), "matrix_args": axes + extra,
                              "checks": list(CHECKS.names()), "targets": TARGETS, "modes": {m: [] for m in args.modes}}
    try:
        for i in range(args.repeat):
            for mode in args.modes:
                result["modes"][mode].append(run_mode(mode, work / f"{mode}-{i + 1}", axes, extra, CHECKS.names()))
        result["report"] = None if args.no_report_bench else report_bench(args.report_cells, args.report_runs)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    result["summary"] = summarise(result["modes"], result["report"], len(result["checks"]))
    result["host"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    path = args.json or RESULTS_DIR / f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{platform.node()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(describe(result))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
