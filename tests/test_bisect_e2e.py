"""`harness bisect` for real: wheels built here, `pip install` into real venvs, the hf runtime booted per step.

The cell bisection runs over toyrt 1.0 ... 1.5 (tests/bisectpkgs.py): 1.2 cannot boot (a skip),
1.4 introduces a weight fault that weight_parity catches. It is interrupted with SIGINT during its
second step, resumed, then run once more to show nothing is repeated.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from harness.boot.lifecycle import processes_with_env
from harness.cli import main
from tests.bisectpkgs import FINDING_KEY, fake_sglang_wheel, toyrt_wheel

TOYRT = {"1.0": "none", "1.1": "none", "1.2": "crash", "1.3": "none", "1.4": "scale_norm", "1.5": "scale_norm"}
SGLANG = {"0.1.0": "portable", "0.1.1": "portable", "0.1.2": "empty", "0.1.3": "portable", "0.1.4": "unportable",
          "0.1.5": "unportable"}


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    wheels = tmp_path_factory.mktemp("wheels")
    for version, fault in TOYRT.items():
        toyrt_wheel(wheels, version, fault)
    for version, state in SGLANG.items():
        fake_sglang_wheel(wheels, version, state)
    return wheels


@pytest.fixture(scope="module")
def venv_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("venvs")


@pytest.fixture
def cache(venv_dir, monkeypatch) -> Path:
    monkeypatch.setenv("HARNESS_VENV_DIR", str(venv_dir))
    return venv_dir


def steps(out: Path) -> list[tuple[str, str]]:
    return [(s["ref"], s["verdict"]) for s in json.loads((out / "bisect.json").read_text())["steps"]]


def cell_cmd(out: Path, index: Path) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "bisect", "--cell", "hf-cpu-tiny-llama-none", "--check", "weight_parity",
            "--good", "toyrt==1.0", "--bad", "toyrt==1.5", "--find-links", str(index), "--no-index", "--out", str(out)]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_cell_bisect_finds_the_release_that_broke_weight_parity_and_resumes_after_ctrl_c(index, venv_dir, tmp_path):
    out = tmp_path / "bisect"
    env = {**os.environ, "HARNESS_VENV_DIR": str(venv_dir)}
    proc = subprocess.Popen(cell_cmd(out, index), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        wait_for(lambda: any(out.glob("steps/02-*/bisect-step.log")), 180, "the second step's `harness run`")
        time.sleep(1.0)  # inside the second step's run: pytest starting or the runtime booting
        proc.send_signal(signal.SIGINT)
        first, _ = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 130, first
    assert "interrupted: 1 step(s) kept" in first
    assert steps(out) == [("1.2", "skip")]
    step2 = next(out.glob("steps/02-*"))
    assert processes_with_env("HARNESS_OUT", str(step2.resolve())) == []  # the interrupted step's runtime is gone

    second = subprocess.run(cell_cmd(out, index), capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 step(s) already done, not repeated" in second.stdout
    assert "first bad: toyrt==1.4\nlast good: toyrt==1.3" in second.stdout
    assert steps(out) == [("1.2", "skip"), ("1.3", "good"), ("1.4", "bad")]
    state = json.loads((out / "bisect.json").read_text())
    assert state["conclusion"]["status"] == "found" and state["conclusion"]["first_bad"] == "1.4"
    bad = state["steps"][2]
    assert "model.norm.weight" in bad["reason"] and bad["env"].endswith("/bin/python") and bad["probe_s"] > 0
    assert "boot-crash" in state["steps"][0]["reason"]
    records = [json.loads(ln) for ln in (Path(bad["run_dir"]) / "results.jsonl").read_text().splitlines()]
    assert [(r["check"], r["status"]) for r in records] == [("weight_parity", "fail")]  # only the check asked for
    assert "first bad: toyrt==1.4" in (out / "bisect.md").read_text()

    third = subprocess.run(cell_cmd(out, index), capture_output=True, text=True, env=env, timeout=120)
    assert third.returncode == 0
    assert "3 step(s) already done" in third.stdout and "step 4" not in third.stdout
    assert steps(out) == [("1.2", "skip"), ("1.3", "good"), ("1.4", "bad")]


def test_portability_bisect_over_releases_steps_around_a_broken_wheel(index, cache, tmp_path, capsys):
    out = tmp_path / "p"
    code = main(["bisect", "--portability", FINDING_KEY, "--good", "sglang==0.1.0", "--bad", "sglang==0.1.5",
                 "--find-links", str(index), "--no-index", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    # the ends are verified (cheap for a static check); 0.1.2 has no sources: skipped, its neighbour tested
    assert steps(out) == [("0.1.0", "good"), ("0.1.5", "bad"), ("0.1.2", "skip"), ("0.1.3", "good"), ("0.1.4", "bad")]
    assert "first bad: sglang==0.1.4\nlast good: sglang==0.1.3" in printed
    assert "sglang/srt/layers/fused.py:1 accel-import flashinfer.top_k" in printed
    assert (cache / "bisect" / "src" / "sglang-0.1.4" / "tree" / "sglang" / "srt" / "layers" / "fused.py").is_file()


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_portability_bisect_over_commits_reports_a_range_when_skips_hide_the_answer(tmp_path, cache, capsys):
    repo = tmp_path / "sglang-src"
    unpacked = tmp_path / "unpacked"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    for i, state in enumerate(("portable", "portable", "empty", "unportable")):
        wheel = fake_sglang_wheel(unpacked / str(i), f"0.2.{i}", state)
        subprocess.run(["rm", "-rf", str(repo / "python")], check=True)
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(repo / "python")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"change {i}: {state}")
        if i == 0:
            git(repo, "tag", "v0.2.0")
    out = tmp_path / "p"
    code = main(["bisect", "--portability", FINDING_KEY, "--source", str(repo), "--good", "v0.2.0", "--bad", "main",
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 1, printed
    assert [v for _, v in steps(out)] == ["good", "bad", "good", "skip"]
    assert "undecided: 1 ref(s) between the last good" in printed
    assert "first bad is one of:" in printed and "change 2: empty" in printed and "main (" in printed
    assert json.loads((out / "bisect.json").read_text())["conclusion"]["status"] == "undecided"


@pytest.mark.parametrize(("args", "words"), [
    (["--cell", "hf-cpu-tiny-lama-none", "--dist", "toyrt", "--good", "1.0", "--bad", "1.1"], "unknown model 'tiny-lama'"),
    (["--cell", "hf-cpu-tiny-llama-none", "--check", "speed", "--dist", "toyrt", "--good", "1.0", "--bad", "1.1"],
     "has no such check"),
    (["--cell", "hf-gpu-tiny-llama-none", "--good", "toyrt==1.0", "--bad", "toyrt==1.1"], "DEVICE in"),
    (["--portability", FINDING_KEY, "--good", "0.1.0", "--bad", "0.1.0"], "same version"),
    (["--portability", FINDING_KEY, "--good", "0.0.9", "--bad", "0.1.1"], "sglang==0.0.9 is not on the package index"),
    (["--portability", "flashinfer", "--good", "0.1.0", "--bad", "0.1.1"], "not a finding key"),
])
def test_bad_input_exits_2_and_says_the_fix(index, cache, tmp_path, capsys, args, words):
    code = main(["bisect", *args, "--find-links", str(index), "--no-index", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err
    assert not (tmp_path / "b").exists()  # nothing written for a bisection that never started
