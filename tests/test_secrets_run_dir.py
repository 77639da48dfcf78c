"""End to end: a real run whose runtimes print their secrets leaves none in any file of the run directory.

The hf runtime prints its secret-looking environment (HARNESS_HF_ECHO_SECRETS, see
harness/runtimes/hf_chaos.py): one cell crashes on boot after printing, one serves its checks.
Then every file under the run directory is searched as bytes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.boot.lifecycle import processes_with_env
from harness.redact import MASK

pytestmark = pytest.mark.e2e
SECRETS = {"HF_TOKEN": "hf_RunDirSecret0123456789", "MY_SERVICE_KEY": "sk-run-dir-service-key-77",
           "CI_JOB_TOKEN": "glcbt-job-token-31337", "DEPLOY_SECRET": "deploy-secret-xyzzy-99"}


def test_no_secret_printed_by_a_runtime_survives_in_any_file_of_the_run_directory(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, **SECRETS, "HARNESS_HF_ECHO_SECRETS": "1", "HARNESS_HF_CHAOS": "hf-cpu-tiny-llama-none=crash_on_boot"}
    cmd = [sys.executable, "-m", "harness.cli", "run", "--out", str(out), "--devices", "cpu", "--models", "tiny-llama",
           "--offload-modes", "none,disk", "--lease-dir", str(tmp_path / "leases"), "-k", "accuracy"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # the crashed cell is red
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.relative_to(out).as_posix() for p in files}
    assert {"logs/hf-cpu-tiny-llama-none.log", "logs/hf-cpu-tiny-llama-disk.log", "results.jsonl", "manifest.json",
            "events.jsonl", "index.html", "summary.md", "junit.xml"} <= names
    leaks = [(p.relative_to(out).as_posix(), name) for p in files for name, value in SECRETS.items()
             if value.encode() in p.read_bytes()]
    assert leaks == []
    # the runtimes did print them: both logs show the masked lines, the crash's tail too
    for cell in ("hf-cpu-tiny-llama-none", "hf-cpu-tiny-llama-disk"):
        assert f"auth: trying credential {MASK}".encode() in (out / "logs" / f"{cell}.log").read_bytes()
    recs = {r["cell"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert recs["hf-cpu-tiny-llama-none"]["status"] == "error" and MASK in recs["hf-cpu-tiny-llama-none"]["log_tail"]
    assert recs["hf-cpu-tiny-llama-disk"]["status"] == "pass"
    assert all(v not in done.stdout + done.stderr for v in SECRETS.values())  # the terminal (a CI log) too
    assert processes_with_env("HARNESS_OUT", str(out)) == []
