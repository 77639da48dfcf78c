"""Render-time benchmark: N cells × 2 checks with M runs of history, cold (no trend cache) and warm.

    python -m harness.reports.bench --cells 2000 --runs 30 [--dir /tmp/bench]

It also times ``harness export --history`` of the same runs to one CSV table.

Records look like real ones (12 answers per accuracy result, 10 worst tensors per parity result,
fingerprint, command), in ResultRecord's JSON form; ~3% of accuracy results fail at random.
"""
from __future__ import annotations

import argparse
import itertools
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.reports.trends import CACHE_DIR
from harness.results import ResultRecord, write_json_atomic

ARGV = ["harness", "run", "--devices", "cpu,cuda,npu,rocm,xpu", "--models", "all"]


def generate(root: Path, cells: int, runs: int, seed: int = 1) -> Path:
    """Write ``runs - 1`` history runs and ``latest``; returns the latest run directory."""
    rnd = random.Random(seed)
    axes = itertools.product([f"model{i}" for i in range(40)], ["cpu", "cuda", "npu", "rocm", "xpu"],
                             ["none", "cpu", "disk", "meta"], ["float32", "bfloat16", "float16"], [1, 2, 4, 8])
    ids = list(itertools.islice(axes, cells))
    answers = [{"prompt": f"The capital of country {i} is", "expected": "Paris", "got": " Paris.", "ok": True} for i in range(12)]
    worst = [{"name": f"model.layers.{i}.mlp.experts.w1", "shape": [64, 128], "max_abs": 0.0, "max_rel": 0.0,
              "cosine": 1.0, "frac_outside": 0.0, "ok": True, "note": ""} for i in range(10)]
    for r in range(runs):
        run_id = f"2026{r // 28 + 1:02d}{r % 28 + 1:02d}T020000Z-{r:04x}"  # sortable, one a day
        run_dir = root / ("latest" if r == runs - 1 else f"history/{run_id}")
        write_json_atomic(run_dir / "manifest.json", {"schema": 1, "run_id": run_id, "status": "complete",
                                                      "started": run_id, "ended": run_id, "argv": ARGV, "harness": "0.1.0"})
        lines = []
        for model, device, offload, dtype, tp in ids:
            cell = f"hf-{device}-{model}-{offload}-{dtype}-tp{tp}"
            common: dict[str, Any] = {
                "run_id": run_id, "cell": cell, "runtime": "hf", "device": device, "model": model, "offload": offload,
                "dtype": dtype, "tp": tp, "boot_s": 10 + rnd.random(),
                "command": f"python hf_server.py --model /zoo/{model} --device {device}",
                "fingerprint": {"runtime": "hf", "version": "5.0", "versions": {"torch": "2.13"}}, "log_path": f"/logs/{cell}.log"}
            bad = rnd.random() < 0.03
            lines.append(ResultRecord(check="accuracy", status="fail" if bad else "pass", reason="wrong-answer" if bad else "12/12",
                                      metrics={"correct": 6 if bad else 12, "total": 12, "pass_rate": 0.5 if bad else 1.0},
                                      details={"answers": answers}, log_tail="Traceback\n" * 20 if bad else None,
                                      **common).to_json())
            lines.append(ResultRecord(check="weight_parity", status="pass", reason="41 tensors",
                                      metrics={"tensors_compared": 41, "max_abs": 0.0}, details={"worst": worst},
                                      **common).to_json())
        (run_dir / "results.jsonl").write_text("\n".join(lines) + "\n")  # no fsync per line: this is test data
    return root / "latest"


def timed_report(latest: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness.cli", "report", str(latest)], check=False, capture_output=True)
    return time.perf_counter() - start


def timed_export(latest: Path, out: Path) -> float:
    """Wall seconds of ``harness export LATEST --history --out OUT`` (a CSV of every run)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness.cli", "export", str(latest), "--history", "--out", str(out)],
                   check=False, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.reports.bench", description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=2000)
    p.add_argument("--runs", type=int, default=30, help="runs in all: the latest plus RUNS-1 in the history")
    p.add_argument("--dir", type=Path, default=None, help="where to generate (default: a temporary directory)")
    args = p.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="harness-bench-"))
    latest = generate(root, args.cells, args.runs)
    cold = timed_report(latest)
    warm = timed_report(latest)
    shutil.rmtree(root / "history" / CACHE_DIR, ignore_errors=True)
    cold2 = timed_report(latest)
    print(f"{args.cells} cells x 2 checks, {args.runs} runs: cold {min(cold, cold2):.2f} s, warm {warm:.2f} s "
          f"(harness report, wall clock; files in {root})")
    table = root / "history.csv"
    exported = timed_export(latest, table)
    rows = sum(1 for _ in table.open()) - 1 if table.exists() else 0
    print(f"export --history to CSV: {exported:.2f} s, {rows} rows (harness export, wall clock)")
    if args.dir is None:
        shutil.rmtree(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
