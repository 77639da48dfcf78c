"""The reference cache: what its key depends on, what it stores, and that workers compute it once."""
from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import harness
from harness.reference.store import (
    ReferenceRequest,
    ReferenceStore,
    checkpoint_digest,
    obtain,
    reference_cell,
    reference_dir,
)
from harness.runtimes.client import Generation

GEN = Generation("p", " Paris.", (5, 6), (-0.01, float("-inf")), (((5, -0.01), (7, -3.5)), ((6, float("-inf")),)))
REQ = ReferenceRequest(("p",), 6, 5)


def test_the_reference_cell_is_hf_cpu_none_float32():
    assert reference_cell("tiny-llama").id == "hf-cpu-tiny-llama-none"


def test_reference_dir_follows_the_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_REFERENCE_DIR", str(tmp_path))
    assert reference_dir() == tmp_path
    monkeypatch.delenv("HARNESS_REFERENCE_DIR")
    assert reference_dir() == Path.home() / ".cache" / "llm-harness" / "reference"


def test_the_key_changes_with_weights_prompts_settings_and_harness_version(tmp_path, monkeypatch):
    (tmp_path / "model.safetensors").write_bytes(b"a")
    digest = checkpoint_digest(tmp_path)
    key = REQ.key(digest)
    (tmp_path / "model.safetensors").write_bytes(b"b")
    assert checkpoint_digest(tmp_path) != digest
    assert ReferenceRequest(("q",), 6, 5).key(digest) != key
    assert ReferenceRequest(("p",), 7, 5).key(digest) != key
    monkeypatch.setattr(harness, "__version__", "9.9.9")
    monkeypatch.setattr("harness.reference.store.__version__", "9.9.9")
    assert REQ.key(digest) != key


def test_the_store_round_trips_generations_including_minus_infinity(tmp_path):
    store = ReferenceStore(tmp_path)
    store.root.mkdir(exist_ok=True)
    store.save("m", "k" * 64, [GEN], {"source": "self"})
    assert store.load("m", "k" * 64) == (GEN,)
    assert store.load("m", "x" * 64) is None
    store.path("m", "k" * 64).write_text("{truncated")
    assert store.load("m", "k" * 64) is None


def _worker(root: str, counter: str) -> str:
    def compute():
        with open(counter, "a") as fh:
            fh.write("x")
        time.sleep(0.5)
        return [GEN]

    return obtain(ReferenceStore(Path(root)), "m", "k" * 64, own=None, compute=compute).source


def test_concurrent_workers_compute_the_reference_once(tmp_path):
    counter = tmp_path / "computed"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        sources = pool.starmap(_worker, [(str(tmp_path / "ref"), str(counter))] * 3)
    assert counter.read_text() == "x"
    assert sorted(sources) == ["cache", "cache", "computed"]


def test_own_answers_fill_the_cache_when_the_cell_is_the_reference(tmp_path):
    store = ReferenceStore(tmp_path)
    first = obtain(store, "m", "k" * 64, own=lambda: [GEN], compute=list)
    again = obtain(store, "m", "k" * 64, own=list, compute=list)
    assert (first.source, again.source) == ("self", "cache") and again.generations == (GEN,)
