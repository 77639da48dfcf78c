"""The CI recipes in examples/ci/: their structure, and their own harness commands run on simulated NPUs.

The commands are taken from the `run:` / `script:` lines that start with ``harness`` and run with
substitutions that keep their meaning on this CPU: ``--require-devices npu`` and ``-n 8`` are
dropped (the first refuses simulation by design) and ``--simulate-devices npu:2 --runtimes hf
--models tiny-llama --offload-modes none`` is added, which leaves the recipe's matrix file two
cells: the CPU reference and one simulated NPU cell.
"""
from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
GITHUB = REPO / "examples" / "ci" / "github-npu-nightly.yml"
GITLAB = REPO / "examples" / "ci" / "gitlab-ci.yml"
ON_CPU = ["--simulate-devices", "npu:2", "--runtimes", "hf", "--models", "tiny-llama", "--offload-modes", "none"]
DROPPED = {"--require-devices", "-n"}  # each with its value
CELLS = {"hf-cpu-tiny-llama-none", "hf-npu-tiny-llama-none"}
GATE_ESCAPES = ("|| true", "|| :", "; true", "set +e", "exit 0")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def harness_lines(lines: Iterable[str]) -> list[str]:
    """The lines of a `run:` block or `script:` list that call the harness."""
    return [line.strip() for block in lines for line in str(block).splitlines() if line.strip().startswith("harness ")]


def github_steps(wf: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return wf["jobs"][job]["steps"]


def github_commands(wf: dict[str, Any], job: str, sub: str) -> list[str]:
    cmds = harness_lines(step.get("run", "") for step in github_steps(wf, job))
    return [c for c in cmds if c.split()[1] == sub]


def gitlab_commands(ci: dict[str, Any], job: str, sub: str) -> list[str]:
    return [c for c in harness_lines(ci[job]["script"]) if c.split()[1] == sub]


def github_expand(cmd: str, shard: int) -> str:
    return _expanded(cmd.replace("${{ matrix.shard }}", str(shard)))


def gitlab_expand(cmd: str, shard: int, total: int) -> str:
    for name, value in (("CI_NODE_INDEX", shard), ("CI_NODE_TOTAL", total)):
        cmd = cmd.replace("${" + name + "}", str(value)).replace("$" + name, str(value))
    return _expanded(cmd)


def _expanded(cmd: str) -> str:
    assert "$" not in cmd, f"a variable the test does not know is left in {cmd!r}"
    return cmd


def shard_arg(cmd: str) -> str:
    argv = shlex.split(cmd)
    return argv[argv.index("--shard") + 1]


def on_cpu(cmd: str) -> list[str]:
    """The recipe's command as it runs here: same subcommand, files and shard; simulated NPUs, one tiny cell each."""
    argv = shlex.split(cmd)
    assert argv[0] == "harness"
    out = [sys.executable, "-m", "harness.cli"]
    rest = iter(argv[1:])
    for arg in rest:
        if arg in DROPPED:
            next(rest)
        elif (REPO / arg).is_file():
            out.append(str(REPO / arg))  # a file of the checkout; the commands run in a scratch directory
        else:
            out.append(arg)
    return out + ON_CPU if argv[1] == "run" else out


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_POLICY", "HARNESS_WAIVERS", "HARNESS_BASELINE")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def assert_gates(cmd: str) -> None:
    assert not any(escape in cmd for escape in GATE_ESCAPES), f"{cmd!r} hides the exit code"


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines() if line.strip()]


# --- GitHub Actions ---------------------------------------------------------------------------------

def test_github_runs_nightly_and_by_hand():
    wf = load(GITHUB)
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["schedule"] and all(len(s["cron"].split()) == 5 for s in triggers["schedule"])
    assert "workflow_dispatch" in triggers
    assert wf["defaults"]["run"]["shell"] == "bash"  # bash -eo pipefail: a failing command fails its step


def test_github_shards_run_on_npu_runners_with_a_consistent_shard_count():
    wf = load(GITHUB)
    job = wf["jobs"]["shard"]
    assert {"self-hosted", "npu"} <= set(job["runs-on"])
    assert job["strategy"]["fail-fast"] is False
    shards = job["strategy"]["matrix"]["shard"]
    (cmd,) = github_commands(wf, "shard", "run")
    assert "--require-devices npu" in cmd and "--out shard-${{ matrix.shard }}" in cmd
    assert [shard_arg(github_expand(cmd, i)) for i in shards] == [f"{i}/{len(shards)}" for i in range(1, len(shards) + 1)]
    upload = next(s for s in github_steps(wf, "shard") if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "always()" in upload["if"]
    assert upload["with"]["path"].rstrip("/") == "shard-${{ matrix.shard }}"
    assert upload["with"]["name"] == "shard-${{ matrix.shard }}"


def test_github_merge_runs_always_names_every_shard_and_fails_on_no_go():
    wf = load(GITHUB)
    job, steps = wf["jobs"]["merge"], github_steps(wf, "merge")
    assert job["needs"] in ("shard", ["shard"]) and "always()" in job["if"]
    download = next(s for s in steps if s.get("uses", "").startswith("actions/download-artifact"))
    shards = wf["jobs"]["shard"]["strategy"]["matrix"]["shard"]
    assert all(fnmatch.fnmatch(f"shard-{i}", download["with"]["pattern"]) for i in shards)
    assert not download["with"].get("merge-multiple")  # each artifact in its own ./shard-I/
    (cmd,) = github_commands(wf, "merge", "merge")
    assert shlex.split(cmd)[2:3 + len(shards)] == ["merged", *(f"shard-{i}" for i in shards)]
    assert "--policy reports/examples/policy.yaml" in cmd
    merge_at = next(i for i, s in enumerate(steps) if cmd in s.get("run", ""))
    assert "continue-on-error" not in steps[merge_at] and "if" not in steps[merge_at]
    assert_gates(steps[merge_at]["run"])
    after = steps[merge_at + 1:]
    assert after and all("always()" in s["if"] for s in after)  # summary and report also on NO-GO
    assert any("merged/summary.md" in s.get("run", "") and '"$GITHUB_STEP_SUMMARY"' in s["run"] for s in after)
    uploaded = [p.strip() for s in after if "upload-artifact" in s.get("uses", "") for p in s["with"]["path"].split()]
    assert {"merged/index.html", "merged/junit.xml", "merged/"} <= set(uploaded)


# --- GitLab CI --------------------------------------------------------------------------------------

def test_gitlab_shards_run_on_npu_runners_and_keep_their_run_directory_always():
    ci = load(GITLAB)
    job = ci["npu-shard"]
    assert "npu" in job["tags"] and isinstance(job["parallel"], int) and job["parallel"] >= 2
    assert ci["stages"].index(job["stage"]) < ci["stages"].index(ci["signoff"]["stage"])
    (cmd,) = gitlab_commands(ci, "npu-shard", "run")
    assert "--require-devices npu" in cmd and "--out shard-$CI_NODE_INDEX" in cmd
    n = job["parallel"]
    assert [shard_arg(gitlab_expand(cmd, i, n)) for i in range(1, n + 1)] == [f"{i}/{n}" for i in range(1, n + 1)]
    assert job["artifacts"]["when"] == "always" and job["artifacts"]["paths"] == ["shard-$CI_NODE_INDEX/"]


def test_gitlab_signoff_runs_always_names_every_shard_reports_junit_and_fails_on_no_go():
    ci = load(GITLAB)
    job, n = ci["signoff"], ci["npu-shard"]["parallel"]
    assert job["needs"] == [{"job": "npu-shard", "artifacts": True}]
    assert job["rules"] and all(rule["when"] == "always" for rule in job["rules"])
    assert "allow_failure" not in job
    (cmd,) = gitlab_commands(ci, "signoff", "merge")
    assert shlex.split(cmd)[2:3 + n] == ["merged", *(f"shard-{i}" for i in range(1, n + 1))]
    assert "--policy reports/examples/policy.yaml" in cmd
    assert_gates(cmd)
    assert job["artifacts"]["when"] == "always" and "merged/" in job["artifacts"]["paths"]
    assert job["artifacts"]["reports"]["junit"] == "merged/junit.xml"


def test_both_recipes_run_the_same_commands():
    wf, ci = load(GITHUB), load(GITLAB)
    shards = wf["jobs"]["shard"]["strategy"]["matrix"]["shard"]
    assert len(shards) == ci["npu-shard"]["parallel"]
    (gh_run,), (gl_run,) = github_commands(wf, "shard", "run"), gitlab_commands(ci, "npu-shard", "run")
    for i in shards:
        assert shlex.split(github_expand(gh_run, i)) == shlex.split(gitlab_expand(gl_run, i, len(shards)))
    assert github_commands(wf, "merge", "merge") == gitlab_commands(ci, "signoff", "merge")


# --- the commands, run --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The GitHub recipe's shard commands, then its merge command, in one scratch directory (as the merge job sees it)."""
    wf = load(GITHUB)
    where = tmp_path_factory.mktemp("ci")
    (run_cmd,), (merge_cmd,) = github_commands(wf, "shard", "run"), github_commands(wf, "merge", "merge")
    shards = {i: run(on_cpu(github_expand(run_cmd, i)), where) for i in wf["jobs"]["shard"]["strategy"]["matrix"]["shard"]}
    return {"dir": where, "shards": shards, "merge_cmd": merge_cmd, "merge": run(on_cpu(merge_cmd), where)}


def test_each_shard_writes_its_run_directory_and_exits_by_its_own_verdict(ran):
    seen: list[str] = []
    for i, done in ran["shards"].items():
        shard = ran["dir"] / f"shard-{i}"
        assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
        for name in ("results.jsonl", "index.html", "summary.md", "junit.xml"):
            assert (shard / name).is_file(), f"shard-{i} has no {name}"
        recs = records(shard)
        assert recs and all(r["status"] == "pass" for r in recs)  # the hf runtime really ran every check
        # a shard holding a simulated NPU cell is NO-GO on its own; the CPU reference alone is GO
        assert done.returncode == (1 if any(r.get("simulated") for r in recs) else 0), done.stdout[-2000:]
        assert f"Report: {shard.resolve() / 'index.html'}" in done.stdout
        seen += sorted({r["cell"] for r in recs})
    assert sorted(seen) == sorted(CELLS)  # every cell in exactly one shard


def test_merge_reports_every_cell_of_every_shard(ran):
    merged = ran["dir"] / "merged"
    for name in ("index.html", "summary.md", "junit.xml"):
        assert (merged / name).is_file(), f"merged has no {name}"
    shard_recs = [r for i in ran["shards"] for r in records(ran["dir"] / f"shard-{i}")]
    recs = records(merged)
    assert sorted((r["cell"], r["check"]) for r in recs) == sorted((r["cell"], r["check"]) for r in shard_recs)
    cases = ElementTree.parse(merged / "junit.xml").getroot().iter("testcase")
    assert {(c.get("classname"), c.get("name")) for c in cases} >= {(r["cell"], r["check"]) for r in recs}
    page = (merged / "index.html").read_text()
    assert all(cell in page for cell in CELLS)


def test_merge_exits_1_no_go_and_only_because_the_npu_results_are_simulated(ran):
    done = ran["merge"]
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Verdict: NO-GO" in done.stdout and "Report:" in done.stdout
    summary = (ran["dir"] / "merged" / "summary.md").read_text()
    assert "NO-GO" in summary and "policy: NPU release" in summary
    why = summary.split("### Why NO-GO", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in why.splitlines() if line.startswith("| ") and not line.startswith("| |")]
    assert rows and all("simulated" in row for row in rows), why


def test_merge_exits_2_when_a_shard_uploaded_nothing(ran, tmp_path):
    shutil.copytree(ran["dir"] / "shard-1", tmp_path / "shard-1")
    done = run(on_cpu(ran["merge_cmd"]), tmp_path)
    assert done.returncode == 2
    assert "shard-2" in done.stderr and not (tmp_path / "merged" / "index.html").exists()


@pytest.mark.skipif(importlib.util.find_spec("torch_npu") is not None or shutil.which("npu-smi") is not None,
                    reason="this machine may have an NPU: the unmodified shard command would run the nightly")
def test_unmodified_shard_command_refuses_a_runner_without_npus(tmp_path):
    wf = load(GITHUB)
    (cmd,) = github_commands(wf, "shard", "run")
    argv = [sys.executable, "-m", "harness.cli", *[str(REPO / a) if (REPO / a).is_file() else a
                                                   for a in shlex.split(github_expand(cmd, 1))[1:]]]
    done = run(argv, tmp_path)
    assert done.returncode == 2
    assert re.search(r"--require-devices npu: no NPU device available", done.stdout + done.stderr)
    assert not (tmp_path / "shard-1" / "results.jsonl").exists()
