"""A third-party package adds a runtime adapter and a check by entry points, and they run in a matrix.

tests/data/thirdparty is a real distribution (``harness-ext-demo``): its adapter ``hf_ext`` boots
the transformers server under another name, its check ``repeatable_greedy`` asks for the same
greedy completion twice. It is pip-installed into a scratch directory (no network) and a
``harness run`` with that directory on PYTHONPATH runs one real cell of it.
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
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--quiet", "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
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


def test_help_and_errors_name_the_installed_runtime(site: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--out", str(tmp_path / "run"),
                           "--runtimes", "nosuch", "--devices", "cpu", "--models", "tiny-llama"],
                          capture_output=True, text=True, timeout=300, env=with_site(site))
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"unknown runtime 'nosuch' in --runtimes; known: hf, sglang, vllm, hf_ext", done.stdout + done.stderr)


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
    ctx = CheckContext(Cell("hf_ext", "cpu", "tiny-llama", "none"), card=None, checkpoint=Path("."),  # type: ignore[arg-type]
                       client=_Client(*answers, text=text), weight_layout="")
    result = module.RepeatableGreedyCheck().run(ctx)
    assert (result.status, reason in result.reason) == (status, True), result
