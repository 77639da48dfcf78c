"""Golden files: their format, and what makes a golden refuse to fit the local checkpoint and card."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from harness.commands.goldens import Golden, LocalModel, mismatches, read, write
from harness.config.cards import ModelCard
from harness.config.refspec import ReferenceSpec
from harness.errors import ConfigError
from harness.reference.store import ReferenceRequest
from harness.runtimes.client import Generation

GEN = Generation("p", " Paris.", (5, 6), (-0.01, float("-inf")), (((5, -0.01), (7, -3.5)), ((6, float("-inf")),)))
REQ = ReferenceRequest(("The capital of France is", "Water freezes at"), 6, 5)
GOLDEN = Golden("tiny-llama", "a" * 64, ReferenceSpec(device="cuda"), REQ, "batched",
                {"host": "gpu-7", "harness": "0.9.0", "created": "2026-01-05T10:00:00Z",
                 "versions": {"torch": "2.13.0", "transformers": "5.24.0"}}, (GEN, GEN))


@pytest.mark.parametrize("name, gzipped", [("g.json.gz", True), ("g.json", False)])
def test_a_golden_round_trips_through_its_file_gzip_or_not(tmp_path, name, gzipped):
    write(GOLDEN, tmp_path / name)
    assert ((tmp_path / name).read_bytes()[:2] == b"\x1f\x8b") is gzipped
    assert read(tmp_path / name) == GOLDEN
    assert GOLDEN.made == "gpu-7 (harness 0.9.0, 2026-01-05; torch 2.13.0, transformers 5.24.0)"


def test_a_file_that_is_not_a_golden_says_how_to_make_one(tmp_path):
    (tmp_path / "x.json").write_text('{"key": "abc", "generations": []}')
    with pytest.raises(ConfigError, match="is not a golden reference file .* `harness reference export MODEL --out FILE`"):
        read(tmp_path / "x.json")
    (tmp_path / "t.json.gz").write_bytes(gzip.compress(b'{"format": "llm-harness-golden", "version": 1, "model": "m"}'))
    with pytest.raises(ConfigError, match="golden file is incomplete: missing field 'prompts'; export it again"):
        read(tmp_path / "t.json.gz")
    (tmp_path / "bad.json").write_text("{trunc")
    with pytest.raises(ConfigError, match="is not JSON"):
        read(tmp_path / "bad.json")


def local(digest: str, request: ReferenceRequest) -> LocalModel:
    card = ModelCard.from_mapping({"name": "tiny-llama", "architecture": "LlamaForCausalLM",
                                   "source": {"builder": {"arch": "llama"}}}, "c")
    return LocalModel(card, Path("/zoo/tiny-llama"), digest, request)


def test_a_matching_golden_has_no_mismatch():
    assert mismatches(GOLDEN, local("a" * 64, REQ)) == []


def test_each_difference_is_named_with_both_values():
    other = ReferenceRequest(("The capital of France is", "Water boils at", "extra"), 8, 5)
    found = mismatches(GOLDEN, local("b" * 64, other))
    assert found == [
        f"checkpoint differs: the golden was made from weights with sha256 {'a' * 16}…, the local checkpoint "
        f"/zoo/tiny-llama has sha256 {'b' * 16}…",
        "prompts differ: the golden has 2 prompts, the local card tiny-llama asks 3; first at prompt 1: golden "
        "'Water freezes at', card 'Water boils at'",
        "generation settings differ: max_new_tokens is 6 in the golden, 8 for the local card",
    ]
    fewer = mismatches(GOLDEN, local("a" * 64, ReferenceRequest(REQ.prompts[:1], 6, 5)))
    assert fewer == ["prompts differ: the golden has 2 prompts, the local card tiny-llama asks 1; the first 1 agree"]


def test_the_golden_file_holds_the_fields_another_host_needs(tmp_path):
    write(GOLDEN, tmp_path / "g.json")
    data = json.loads((tmp_path / "g.json").read_text())
    assert {"format", "version", "model", "checkpoint_digest", "reference", "prompts", "max_new_tokens", "top_logprobs",
            "generation", "producer", "generations"} <= set(data)
    assert data["reference"] == {"runtime": "hf", "device": "cuda", "dtype": "float32", "offload": "none"}
    assert data["generations"][0]["top_logprobs"][0] == [[5, -0.01], [7, -3.5]]
