"""A third-party package adds a runtime adapter, a check and a portability profile by entry points, and they run.

tests/data/thirdparty is a real distribution (``harness-ext-demo``): its adapter ``hf_ext`` boots
the transformers server under another name, its check ``repeatable_greedy`` asks for the same
greedy completion twice, its portability profile ``demoserve`` names an NPU-only package. It is
pip-installed into a scratch directory (no network) and a ``harness run`` with that directory on
PYTHONPATH runs one real cell of it.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.checks.base import CheckContext
from harness.config.matrix import Cell
from harness.runtimes.client import Generation

pytestmark = pytest.mark.e2e
PACKAGE = Path(__file__).parent / "data" / "thirdparty"
CELL = "hf_ext-cpu-tiny-llama-none"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo distribution installed (with its entry points) into a directory of its own."""
    scratch = tmp_path_factory.mktemp("thirdparty")
    source = shutil.copytree(PACKAGE, scratch / "src")  # pip builds in the source tree: not in the checkout
    target = scratch / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir"]
    done = subprocess.run([*pip, "--quiet", "--target", str(target), str(source)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def with_site(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
    return env


@pytest.fixture(scope="module")
def run(site: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("thirdparty-run") / "run"
    cmd = [sys.executable, "-m", "harness.cli", "run", "--out", str(out), "--runtimes", "hf_ext",
           "--models", "tiny-llama", "--devices", "cpu", "--offload-modes", "none"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=with_site(site)), out


def test_the_installed_adapter_and_check_run_in_the_matrix(run) -> None:
    done, out = run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    by_check = {r["check"]: r for r in records if r["cell"] == CELL}
    assert by_check["repeatable_greedy"]["status"] == "pass", by_check["repeatable_greedy"]
    assert by_check["repeatable_greedy"]["metrics"]["tokens"] > 0
    assert {"accuracy", "weight_parity", "logprob_parity", "mode_active"} <= set(by_check)  # the built-ins ran too
    assert {r["runtime"] for r in records} == {"hf_ext"}
    assert by_check["accuracy"]["fingerprint"]["extension"] == "harness-ext-demo"  # the adapter's own fingerprint


def test_the_verdict_counts_the_third_party_results(run) -> None:
    done, out = run
    passed = sum(json.loads(line)["status"] == "pass" for line in (out / "results.jsonl").read_text().splitlines())
    verdict = re.search(r"Verdict: GO — (\d+) of (\d+) required result\(s\) passed", done.stdout)
    assert verdict, done.stdout[-2000:]
    assert int(verdict[1]) == int(verdict[2]) == passed == 5  # four built-in checks and the third-party one


def test_an_unknown_runtime_is_answered_with_the_installed_one_among_the_known(site: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--out", str(tmp_path / "run"),
                           "--runtimes", "nosuch", "--devices", "cpu", "--models", "tiny-llama"],
                          capture_output=True, text=True, timeout=300, env=with_site(site))
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "unknown runtime 'nosuch' in --runtimes; known: hf, sglang, vllm, hf_ext" in done.stdout + done.stderr
    helped = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--help"], capture_output=True, text=True,
                            timeout=300, env=with_site(site))
    assert helped.returncode == 0 and "known: hf, sglang, vllm, hf_ext" in " ".join(helped.stdout.split())


def test_the_installed_portability_profile_drives_harness_portability(site: Path, tmp_path: Path) -> None:
    models = tmp_path / "src" / "demoserve" / "models"
    models.mkdir(parents=True)
    for init in (models.parent / "__init__.py", models / "__init__.py"):
        init.write_text("")
    (models / "npu_model.py").write_text("import torch_npu\n")  # the profile says: imports on npu only
    portability = [sys.executable, "-m", "harness.cli", "portability"]
    usage = subprocess.run([*portability, "--help"], capture_output=True, text=True, timeout=300, env=with_site(site))
    assert "--runtime {sglang,vllm,demoserve}" in usage.stdout, usage.stdout[:1000]
    done = subprocess.run([*portability, "--runtime", "demoserve", "--source", str(tmp_path / "src"), "--no-probe",
                           "--format", "lines"], capture_output=True, text=True, timeout=300, env=with_site(site))
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "accel-import" in done.stdout and "torch_npu" in done.stdout and "npu_model.py" in done.stdout


class _Client:
    """Answers with the given token ids, one list per call."""

    def __init__(self, *answers: tuple[int, ...], text: str = " Paris") -> None:
        self.answers, self.text = list(answers), text

    def generate(self, prompts, *, max_new_tokens, top_logprobs=0):
        ids = self.answers.pop(0)
        return [Generation(prompts[0], self.text, ids, tuple(0.0 for _ in ids))]


@pytest.mark.parametrize(("answers", "text", "status", "reason"), [
    (((5, 6, 7), (5, 6, 7)), " Paris", "pass", "3 tokens, the same twice"),
    (((5, 6, 7), (5, 9, 7)), " Paris", "fail", "differ from token 1"),
    (((5, 6), (5, 6, 7)), " Paris", "fail", "differ from token 2"),
    (((5,), (5,)), "  ", "fail", "empty or repeats the prompt"),
])
def test_the_demo_check_judges_what_the_runtime_answers(answers, text, status, reason) -> None:
    spec = importlib.util.spec_from_file_location("demo_check", PACKAGE / "harness_ext_demo" / "check.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not imported as a package: the registries of this process stay as they are
    cell = Cell("hf_ext", "cpu", "tiny-llama", "none")
    ctx = CheckContext(cell, card=None, checkpoint=Path("."), client=_Client(*answers, text=text),  # type: ignore[arg-type]
                       weight_layout="")
    result = module.RepeatableGreedyCheck().run(ctx)
    assert (result.status, reason in result.reason) == (status, True), result
