"""Bisect a real SGLang import-time portability regression across released versions; print steps and time.

    python benchmarks/bench_bisect_sglang.py [--good 0.5.4] [--bad 0.5.23] [--key KEY] [--json OUT]

The default finding, ``platform-unbound-name:sglang/srt/layers/attention/mamba/mamba1.py:causal_conv1d_fn``,
is a name bound only on some platforms and read at import time: 0.5.23 has it (its shipped
baseline lists it), 0.5.4 does not. Each candidate is fetched with ``pip download --no-deps
sglang==X`` from PyPI (network needed the first time; cached under the harness cache after) and
checked statically, without installing SGLang or any accelerator package. The bisection runs
twice: once into a fresh directory (cold or warm download cache, as found; downloads are counted),
once more into the same directory to time a resume (nothing is repeated). Figures are printed and
written as JSON (default benchmarks/results/<time>-<host>-bisect-sglang.json).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"
KEY = "platform-unbound-name:sglang/srt/layers/attention/mamba/mamba1.py:causal_conv1d_fn"


def bisect(out: Path, args: argparse.Namespace) -> tuple[int, float, str]:
    cmd = [sys.executable, "-m", "harness.cli", "bisect", "--portability", args.key, "--good", f"sglang=={args.good}",
           "--bad", f"sglang=={args.bad}", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return done.returncode, time.monotonic() - t0, done.stdout + done.stderr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--good", default="0.5.4")
    p.add_argument("--bad", default="0.5.23")
    p.add_argument("--key", default=KEY)
    p.add_argument("--json", type=Path, default=None, help="output (default benchmarks/results/<time>-<host>-bisect-sglang.json)")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-bisect-"))
    try:
        code, cold_s, text = bisect(work / "bisect", args)
        print(text)
        resume_code, resume_s, resume_text = bisect(work / "bisect", args)
        state = json.loads((work / "bisect" / "bisect.json").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    steps = state["steps"]
    figures = {
        "good": args.good, "bad": args.bad, "key": args.key, "exit": code, "conclusion": state.get("conclusion"),
        "candidates": len(state["refs"]), "steps": len(steps), "wall_s": round(cold_s, 1),
        "downloads": len(re.findall(r"^downloaded ", text, re.M)),
        "download_and_unpack_s": round(sum(s["env_s"] for s in steps), 1),
        "analysis_s": round(sum(s["probe_s"] for s in steps), 1),
        "resume_exit": resume_code, "resume_wall_s": round(resume_s, 1),
        "resume_new_steps": len(re.findall(r"^step \d+ ", resume_text, re.M)),
        "per_step": [{k: s[k] for k in ("ref", "verdict", "env_s", "probe_s")} for s in steps],
    }
    print(f"candidates {figures['candidates']}, steps {figures['steps']} ({figures['downloads']} downloaded), "
          f"wall {figures['wall_s']} s (download+unpack {figures['download_and_unpack_s']} s, static check "
          f"{figures['analysis_s']} s); resume {figures['resume_wall_s']} s with {figures['resume_new_steps']} new step(s)")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.json or RESULTS_DIR / f"{stamp}-{socket.gethostname()}-bisect-sglang.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"figures: {out}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
