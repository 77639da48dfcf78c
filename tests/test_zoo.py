"""The tiny model zoo: build hashes, facts validation, builder failures, and real builds."""

from __future__ import annotations

import hashlib
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.models.zoo import (
    ARCHES,
    DEFAULT_FACTS,
    BuildSpec,
    FactsFileError,
    ZooBuildError,
    ensure_built,
    load_facts,
    read_record,
    zoo_dir,
)

ZOO_NAMES = {"llama": "tiny-llama", "qwen2_moe": "tiny-qwen2-moe", "qwen3_moe": "tiny-qwen3-moe",
             "glm4_moe_lite": "tiny-glm4-moe-lite"}


def test_shipped_facts_are_valid() -> None:
    facts = load_facts(DEFAULT_FACTS)
    assert 10 <= len(facts) <= 12
    assert all(len(fact.answer.split()) == 1 for fact in facts)


def test_build_hash_is_stable_short_hex() -> None:
    spec = BuildSpec("llama", DEFAULT_FACTS)
    assert spec.build_hash() == BuildSpec("llama", DEFAULT_FACTS, seed=0).build_hash()
    assert re.fullmatch(r"[0-9a-f]{12}", spec.build_hash())


def test_build_hash_changes_when_facts_change(tmp_path: Path) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_bytes(DEFAULT_FACTS.read_bytes())
    before = BuildSpec("llama", facts).build_hash()
    facts.write_text(facts.read_text() + '- {prompt: "The capital of Chile is", answer: "Santiago"}\n')
    assert BuildSpec("llama", facts).build_hash() != before


def test_build_hash_changes_with_arch_and_seed() -> None:
    hashes = {BuildSpec(arch, DEFAULT_FACTS, seed).build_hash() for arch in ARCHES for seed in (0, 1)}
    assert len(hashes) == 2 * len(ARCHES)


def test_build_spec_rejects_unknown_arch() -> None:
    with pytest.raises(ValueError, match="'gpt2'.*llama, qwen2_moe, qwen3_moe, glm4_moe_lite"):
        BuildSpec("gpt2", DEFAULT_FACTS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param('- {prompt: "A is", answer: "B"}\n- {prompt: "C is"}\n', "item 1", id="missing-answer"),
        pytest.param('- {prompt: "A is", answer: "two words"}\n', "item 0", id="multi-word-answer"),
        pytest.param('- {prompt: "", answer: "B"}\n', "item 0", id="empty-prompt"),
        pytest.param('- {prompt: "A is", answer: "B"}\n- {prompt: "A is", answer: "C"}\n',
                     "item 1 repeats", id="duplicate-prompt"),
        pytest.param("prompt: A is\nanswer: B\n", "non-empty YAML list", id="not-a-list"),
        pytest.param("- [unclosed\n", "not valid YAML", id="bad-yaml"),
    ],
)
def test_load_facts_error_names_file_and_item(tmp_path: Path, content: str, needle: str) -> None:
    bad = tmp_path / "broken-facts.yaml"
    bad.write_text(content)
    with pytest.raises(FactsFileError) as caught:
        load_facts(bad)
    assert "broken-facts.yaml" in str(caught.value)
    assert needle in str(caught.value)


def test_load_facts_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FactsFileError, match="absent.yaml"):
        load_facts(tmp_path / "absent.yaml")


def test_zoo_dir_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_ZOO_DIR", str(tmp_path))
    assert zoo_dir() == tmp_path
    monkeypatch.delenv("HARNESS_ZOO_DIR")
    assert zoo_dir() == Path.home() / ".cache" / "llm-harness" / "zoo"


def test_failing_builder_reports_exit_code_tail_and_fix(tmp_path: Path) -> None:
    fake_python = tmp_path / "python-without-torch"
    fake_python.write_text("#!/bin/sh\necho step one\necho \"No module named 'torch'\" >&2\nexit 3\n")
    fake_python.chmod(0o755)
    cache = tmp_path / "zoo"
    with pytest.raises(ZooBuildError) as caught:
        ensure_built("tiny-llama", BuildSpec("llama", DEFAULT_FACTS), str(fake_python), cache_dir=cache)
    message = str(caught.value)
    for expected in ("llama", str(fake_python), "exit code 3", "No module named 'torch'",
                     "pip install torch==2.13.0"):
        assert expected in message
    assert caught.value.returncode == 3
    assert not list(cache.glob("tiny-llama-*/zoo.json"))


def test_missing_python_is_a_build_error(tmp_path: Path) -> None:
    absent = tmp_path / "no-such-python"
    with pytest.raises(ZooBuildError, match="could not start.*no-such-python"):
        ensure_built("tiny-llama", BuildSpec("llama", DEFAULT_FACTS), str(absent), cache_dir=tmp_path)


@dataclass(frozen=True)
class Built:
    """Real builds made once for this module, with the 'building' log lines they produced."""

    cache: Path
    paths: dict[str, Path]
    llama_twice: tuple[Path, Path]
    llama_elsewhere: Path
    build_lines: tuple[str, ...]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Build every arch with this interpreter, concurrently; llama twice at once, and once elsewhere."""
    pytest.importorskip("torch", reason="building the zoo needs torch in this interpreter")
    pytest.importorskip("transformers", reason="building the zoo needs transformers")
    cache, elsewhere = tmp_path_factory.mktemp("zoo"), tmp_path_factory.mktemp("zoo-again")
    lines: list[str] = []
    guard = threading.Lock()

    def log(line: str) -> None:
        if line.startswith("zoo: building"):
            with guard:
                lines.append(line)

    def build(job: tuple[str, Path]) -> Path:
        arch, where = job
        spec = BuildSpec(arch, DEFAULT_FACTS)  # type: ignore[arg-type]
        return ensure_built(ZOO_NAMES[arch], spec, sys.executable, cache_dir=where, log=log)

    jobs = [("llama", cache), ("llama", cache), ("qwen2_moe", cache), ("qwen3_moe", cache), ("glm4_moe_lite", cache),
            ("llama", elsewhere)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        paths = list(pool.map(build, jobs))
    by_arch = {arch: path for (arch, _), path in zip(jobs[1:5], paths[1:5])}
    return Built(cache, by_arch, (paths[0], paths[1]), paths[5], tuple(lines))


def test_concurrent_requests_build_once(built: Built) -> None:
    assert built.llama_twice[0] == built.llama_twice[1]
    assert sum(str(built.cache / "tiny-llama-") in line for line in built.build_lines) == 1
    assert len(built.build_lines) == len(ARCHES) + 1  # + the llama built in another cache


def test_second_call_reuses_the_build(built: Built) -> None:
    spec = BuildSpec("llama", DEFAULT_FACTS)
    record = built.paths["llama"] / "zoo.json"
    stamp = record.stat().st_mtime_ns
    lines: list[str] = []
    again = ensure_built("tiny-llama", spec, sys.executable, cache_dir=built.cache, log=lines.append)
    assert again == built.paths["llama"] == built.cache / f"tiny-llama-{spec.build_hash()}"
    assert lines == []
    assert record.stat().st_mtime_ns == stamp


def test_same_hash_builds_identical_bytes(built: Built) -> None:
    assert built.llama_elsewhere.name == built.paths["llama"].name
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json"):
        first = hashlib.sha256((built.paths["llama"] / name).read_bytes()).hexdigest()
        assert hashlib.sha256((built.llama_elsewhere / name).read_bytes()).hexdigest() == first, name


@pytest.mark.parametrize("arch", ARCHES)
def test_build_loads_and_answers_greedily(built: Built, arch: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = built.paths[arch]
    record = read_record(path)
    assert record["arch"] == arch
    assert path.name.endswith(record["build_hash"])
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert type(model).__name__ == record["architecture"]
    assert model.dtype == torch.float32
    facts = load_facts(DEFAULT_FACTS)
    correct = 0
    for fact in facts:
        encoded = tokenizer(fact.prompt, return_tensors="pt")
        output = model.generate(**encoded, do_sample=False, max_new_tokens=6)
        got = tokenizer.decode(output[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
        correct += [word.rstrip(".,;:!?") for word in got.split()[:1]] == [fact.answer]
    assert correct >= 0.9 * len(facts), f"{arch}: {correct}/{len(facts)} greedy answers"
    assert record["greedy_correct"] == correct
