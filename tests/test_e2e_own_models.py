"""End to end: your own models (a card directory outside the package, an ad-hoc --model) on the real hf runtime."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.boot.cellrun import resolve_checkpoint
from harness.config.cards import CARDS_DIR, load_cards

pytestmark = pytest.mark.e2e
CHECKS = ("accuracy", "weight_parity", "logprob_parity")


@pytest.fixture(scope="module")
def tiny_llama() -> Path:
    """The zoo's tiny-llama checkpoint directory (built once and cached, as a run would)."""
    return resolve_checkpoint(load_cards()["tiny-llama"], sys.executable)


def harness_run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[tuple[str, str], dict]]:
    out = tmp_path / "run"
    env = {**os.environ, "HARNESS_REFERENCE_DIR": str(tmp_path / "reference")}
    cmd = [sys.executable, "-m", "harness.cli", "run", "--out", str(out), "--devices", "cpu",
           "--offload-modes", "none", "--no-progress", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    lines = (out / "results.jsonl").read_text().splitlines() if (out / "results.jsonl").exists() else []
    return done, {(r["cell"], r["check"]): r for r in map(json.loads, lines)}


def test_a_card_directory_outside_the_package_runs_go(tmp_path, tiny_llama):
    cards = tmp_path / "team-cards"
    cards.mkdir()
    text = (CARDS_DIR / "tiny-llama.yaml").read_text().replace("name: tiny-llama", "name: mine")
    (cards / "mine.yaml").write_text(text.replace("  builder: {arch: llama, facts: world, seed: 0}",
                                                  f"  path: {tiny_llama}"))
    done, recs = harness_run(tmp_path, "--cards", str(cards), "--models", "mine")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Verdict: GO" in done.stdout
    assert {cell for cell, _ in recs} == {"hf-cpu-mine-none"}
    for check in CHECKS:
        record = recs[("hf-cpu-mine-none", check)]
        assert record["status"] == "pass" and record["model"] == "mine", record


def test_an_adhoc_model_from_a_checkpoint_directory_runs_go(tmp_path, tiny_llama):
    done, recs = harness_run(tmp_path, "--model", f"own-llama={tiny_llama}", "--model-facts", "world")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Verdict: GO" in done.stdout
    assert {cell for cell, _ in recs} == {"hf-cpu-own-llama-none"}  # instead of the default models
    for check in CHECKS:
        record = recs[("hf-cpu-own-llama-none", check)]
        assert record["status"] == "pass" and record["model"] == "own-llama", record
    parity = recs[("hf-cpu-own-llama-none", "weight_parity")]["metrics"]
    assert parity["tensors_compared"] > 0 and parity["tensors_failed"] == 0


def test_an_adhoc_model_of_an_unknown_architecture_is_bad_input(tmp_path, tiny_llama):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    config = json.loads((tiny_llama / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**config, "architectures": ["MambaForCausalLM"], "model_type": "mamba"}))
    (ckpt / "model.safetensors").symlink_to(next(tiny_llama.glob("*.safetensors")))
    done, recs = harness_run(tmp_path, "--model", f"m={ckpt}")
    assert done.returncode == 2 and not recs
    assert "unknown architecture" in done.stderr + done.stdout and "LlamaForCausalLM" in done.stderr + done.stdout


def test_a_golden_of_an_adhoc_model_is_exported_and_imported_through_the_same_catalog(tmp_path, tiny_llama):
    import gzip

    env = {**os.environ, "HARNESS_REFERENCE_DIR": str(tmp_path / "store-a")}
    golden, adhoc = tmp_path / "own.json.gz", ["--model", f"own-llama={tiny_llama}"]
    cmd = [sys.executable, "-m", "harness.cli", "reference"]
    done = subprocess.run([*cmd, "export", "own-llama", "--out", str(golden), *adhoc], capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(gzip.decompress(golden.read_bytes()))["model"] == "own-llama"
    env["HARNESS_REFERENCE_DIR"] = str(tmp_path / "store-b")
    done = subprocess.run([*cmd, "import", str(golden), *adhoc], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list((tmp_path / "store-b").glob("own-llama-*.json"))
    unknown = subprocess.run([*cmd, "import", str(golden)], capture_output=True, text=True, timeout=600, env=env)
    assert unknown.returncode == 2 and "unknown model 'own-llama'" in unknown.stderr  # without --model it is not known
