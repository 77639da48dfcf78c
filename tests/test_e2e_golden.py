"""End to end on the real hf runtime (tiny-llama): a golden exported on one "host", imported into an empty
reference store, used by a run that never boots the reference; mismatched goldens refused; a reference
that will not fit refused before it boots.

Each "host" is its own reference store (HARNESS_REFERENCE_DIR in a temporary directory).
"""
from __future__ import annotations

import gzip
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from harness.reference.memory import TEST_MEMORY_ENV
from tests.htmlgrid import parse_report

pytestmark = pytest.mark.e2e
MODEL = "tiny-llama"
REF_CELL = f"hf-cpu-{MODEL}-none"


def harness_cli(*args: str, store: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != TEST_MEMORY_ENV}
    full.update(HARNESS_REFERENCE_DIR=str(store), **env)
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=900,
                          env=full)


def run_disk_cell(out: Path, store: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The one cell that is not the reference: its logprob parity needs the reference from somewhere."""
    return harness_cli("run", "--out", str(out), "--devices", "cpu", "--models", MODEL, "--offload-modes", "disk",
                       store=store, **env)


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def events(out: Path) -> list[tuple[str, str]]:
    return [(e["event"], e["cell"]) for e in map(json.loads, (out / "events.jsonl").read_text().splitlines())]


def store_entries(store: Path) -> list[Path]:
    return sorted(store.glob("*.json")) if store.exists() else []


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> Path:
    """Exported on host A: computed there with the real hf runtime (A's store was empty)."""
    root = tmp_path_factory.mktemp("golden")
    done = harness_cli("reference", "export", MODEL, "--out", str(root / "g.json.gz"), store=root / "store-a")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"exported the hf-cpu float32 reference of {MODEL} (computed here now" in done.stdout
    assert len(store_entries(root / "store-a")) == 1
    return root / "g.json.gz"


def test_the_golden_holds_answers_prompts_digest_and_the_producing_environment(golden):
    data = json.loads(gzip.decompress(golden.read_bytes()))
    assert data["model"] == MODEL and len(data["checkpoint_digest"]) == 64
    assert len(data["generations"]) == len(data["prompts"]) > 0 and data["top_logprobs"] == 5
    first = data["generations"][0]
    assert first["prompt"] == data["prompts"][0] and len(first["logprobs"]) == len(first["token_ids"]) > 0
    assert all(len(step) == 5 for step in first["top_logprobs"])
    made = data["producer"]
    assert made["host"] == platform.node() and made["harness"] == harness.__version__
    assert made["versions"]["torch"] and made["versions"]["transformers"]
    assert (made["runtime"], made["device"], made["dtype"]) == ("hf", "cpu", "float32")


def test_an_imported_golden_is_used_without_booting_the_reference(golden, tmp_path):
    store = tmp_path / "store-b"
    done = harness_cli("reference", "import", str(golden), store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"imported the hf-cpu float32 reference of {MODEL}, golden made on {platform.node()}" in done.stdout
    assert len(store_entries(store)) == 1
    run = run_disk_cell(tmp_path / "run", store)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    parity = next(r for r in records(tmp_path / "run") if r["check"] == "logprob_parity")
    made = json.loads(gzip.decompress(golden.read_bytes()))["producer"]["created"][:10]
    origin = f"golden imported from {platform.node()} (harness {harness.__version__}, {made})"
    assert parity["status"] == "pass" and parity["metrics"]["max_abs_delta"] == 0.0
    assert parity["metrics"]["reference_source"] == "golden" and parity["metrics"]["reference_origin"] == origin
    assert parity["metrics"]["reference_cell"] == REF_CELL
    assert events(tmp_path / "run") == [("boot", f"hf-cpu-{MODEL}-disk"), ("stopped", f"hf-cpu-{MODEL}-disk")]
    assert not list((tmp_path / "run" / "logs").glob("reference-*"))  # the reference runtime never started
    figures = parse_report((tmp_path / "run" / "index.html").read_text()).figures
    assert figures[f"hf-cpu-{MODEL}-disk::logprob_parity"]["reference"] == f"{REF_CELL}, {origin}"


@pytest.mark.parametrize("change, says", [
    ({"checkpoint_digest": "0" * 64}, f"checkpoint differs: the golden was made from weights with sha256 {'0' * 16}…, "
                                      "the local checkpoint "),
    ({"prompts": ["The capital of Peru is"]}, "prompts differ: the golden has 1 prompts, the local card tiny-llama asks"),
    ({"max_new_tokens": 99}, "generation settings differ: max_new_tokens is 99 in the golden"),
])
def test_a_golden_that_does_not_match_the_local_checkpoint_or_card_is_refused(golden, tmp_path, change, says):
    data = {**json.loads(gzip.decompress(golden.read_bytes())), **change}
    (tmp_path / "other.json").write_text(json.dumps(data))
    done = harness_cli("reference", "import", str(tmp_path / "other.json"), store=tmp_path / "store")
    assert done.returncode == 2 and done.stdout == ""
    assert f"golden {tmp_path / 'other.json'} refused for model {MODEL}" in done.stderr and says in done.stderr
    assert "export it again from this checkpoint and card" in done.stderr
    assert store_entries(tmp_path / "store") == []


def test_a_reference_that_will_not_fit_is_refused_unbooted_and_the_check_says_why(tmp_path):
    store = tmp_path / "store"
    run = run_disk_cell(tmp_path / "run", store, **{TEST_MEMORY_ENV: "1M"})
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    by_check = {r["check"]: r for r in records(tmp_path / "run")}
    parity = by_check["logprob_parity"]
    assert parity["status"] == "error" and parity.get("attempt") == 1  # a preflight refusal is never retried
    assert parity["reason"].startswith(f"preflight: reference {REF_CELL} (hf-cpu float32) will not fit: it needs ~")
    assert "of host memory" in parity["reason"]
    assert f"1.0 MiB available ({TEST_MEMORY_ENV}=1M, test-only)" in parity["reason"]
    assert f"harness reference import {MODEL}.golden.json.gz" in parity["reason"]
    assert by_check["accuracy"]["status"] == by_check["weight_parity"]["status"] == "pass"
    assert ("reference-refused", REF_CELL) in events(tmp_path / "run")
    assert not any(e == "reference-boot" for e, _ in events(tmp_path / "run"))
    assert not list((tmp_path / "run" / "logs").glob("reference-*")) and store_entries(store) == []
    export = harness_cli("reference", "export", MODEL, "--out", str(tmp_path / "g.json"), store=store,
                         **{TEST_MEMORY_ENV: "1M"})
    assert export.returncode == 1 and "harness reference export: preflight: reference" in export.stderr
    assert not (tmp_path / "g.json").exists()


def test_a_matrix_file_reference_makes_another_cell_the_reference(tmp_path):
    matrix = tmp_path / "m.yaml"
    matrix.write_text(f"runtimes: [hf]\ndevices: [cpu]\nmodels: [{MODEL}]\noffload_modes: [none, disk]\n"
                      "reference: {offload: disk}\n")
    run = harness_cli("run", "--out", str(tmp_path / "run"), "--matrix", str(matrix), store=tmp_path / "store")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    parity = {r["cell"]: r["metrics"] for r in records(tmp_path / "run") if r["check"] == "logprob_parity"}
    disk, none = parity[f"hf-cpu-{MODEL}-disk"], parity[REF_CELL]
    assert disk["reference_cell"] == none["reference_cell"] == f"hf-cpu-{MODEL}-disk"
    assert disk["reference_source"] in ("self", "cache") and none["reference_source"] in ("computed", "cache")
    assert none["reference_origin"] == "computed here on hf-cpu float32, disk offload"
    assert [c for e, c in events(tmp_path / "run") if e == "reference-boot"] in ([], [f"hf-cpu-{MODEL}-disk"])
    assert len(store_entries(tmp_path / "store")) == 1
