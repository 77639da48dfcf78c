"""Checks and adapters say what they mean: N/A rules as data, figures from metrics, capabilities not names."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from harness.checks import CHECKS
from harness.checks.base import CheckContext
from harness.checks.meaning import (
    EMPTY_ANSWERS,
    EMPTY_WEIGHTS,
    CellRule,
    CheckDefaults,
    WeightsUnreadable,
    first_reason,
)
from harness.checks.weight_parity import CHECK as WEIGHT_PARITY
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.runtimes import RUNTIMES
from harness.runtimes.base import Capabilities, WeightDigests
from harness.runtimes.sglang import WEIGHTS_BY_NAME
from tests.test_numerics_weight_parity import write_safetensors


def card(architecture: str = "LlamaForCausalLM") -> ModelCard:
    return ModelCard.from_mapping({"name": "m", "architecture": architecture, "source": {"path": "p"}}, "m")


@pytest.mark.parametrize("check, reason", [("accuracy", EMPTY_ANSWERS.reason), ("logprob_parity", EMPTY_ANSWERS.reason),
                                           ("weight_parity", EMPTY_WEIGHTS.reason), ("mode_active", None)])
def test_meta_offload_is_na_for_the_checks_that_declare_it(check, reason):
    meta, plain = Cell("sglang", "npu", "m", "meta"), Cell("sglang", "npu", "m", "none")
    assert CHECKS.get(check).na_reason(meta, card()) == reason
    assert CHECKS.get(check).na_reason(plain, card()) is None


def test_a_cell_rule_holds_only_where_every_dimension_it_names_matches():
    rule = CellRule("no fp8 on the cpu", devices=("cpu",), runtimes=("vllm",))
    assert rule.why(Cell("vllm", "cpu", "m", "none"), card()) == "no fp8 on the cpu"
    assert rule.why(Cell("vllm", "npu", "m", "none"), card()) is None
    assert rule.why(Cell("hf", "cpu", "m", "none"), card()) is None
    rules = (CellRule("a", offloads=("disk",)), CellRule("b", devices=("cpu",)), CellRule("c"))
    assert first_reason(rules, Cell("hf", "cpu", "m", "disk"), card()) == "a"
    assert first_reason(rules, Cell("hf", "cpu", "m", "none"), card()) == "b"
    assert first_reason(rules[:2], Cell("hf", "npu", "m", "none"), card()) is None


def test_weight_parity_is_na_where_the_runtime_neither_reads_the_model_by_name_nor_reproduces_its_digests():
    moe = card("Qwen3MoeForCausalLM")
    on_cuda = WEIGHT_PARITY.na_reason(Cell("sglang", "cuda", "m", "none"), moe)
    assert on_cuda == (f"SGLang's Qwen3MoeForCausalLM does not implement /get_weights_by_name (only "
                       f"{', '.join(sorted(WEIGHTS_BY_NAME))} do), and on cuda the runtime's /weights_checker hashes "
                       "with a Triton kernel, not sha256: its digests cannot be reproduced from the checkpoint")
    at_tp2 = WEIGHT_PARITY.na_reason(Cell("sglang", "npu", "m", "none", tp=2), moe)
    assert at_tp2.endswith("they are rebuilt from the checkpoint at tp 1 only (tp=2)")
    assert WEIGHT_PARITY.na_reason(Cell("sglang", "npu", "m", "none"), moe) is None  # by digest
    assert WEIGHT_PARITY.na_reason(Cell("sglang", "cuda", "m", "none"), card()) is None  # Llama: by name
    assert WEIGHT_PARITY.na_reason(Cell("hf", "cuda", "m", "none"), moe) is None  # hf reads every model by name
    assert WeightsUnreadable().why(Cell("not-registered", "cuda", "m", "none"), moe) is None


def test_the_built_in_adapters_declare_their_capabilities_and_their_layout_follows_them():
    caps = {name: RUNTIMES.get(name).capabilities for name in RUNTIMES}
    assert caps["hf"].weight_digests is None and caps["hf"].reads_weights_of("AnyForCausalLM")
    assert caps["vllm"].weight_layout == "vllm" and caps["vllm"].weight_digests is None
    assert caps["sglang"].weight_layout == "sglang" and not caps["sglang"].reads_weights_of("Qwen3MoeForCausalLM")
    assert caps["sglang"].weight_digests.why_not("npu", 1) is None
    assert caps["hf"].no_layer_states == ""  # it answers /layer_states
    assert "return_hidden_states" in caps["sglang"].no_layer_states and "--worker-extension-cls" in caps["vllm"].no_layer_states
    for name in RUNTIMES:
        adapter = RUNTIMES.get(name)
        assert adapter.offload_modes == adapter.capabilities.offload_modes
        assert adapter.weight_layout == adapter.capabilities.weight_layout  # what the boot hands the checks


def test_an_adapter_that_declares_no_capabilities_gets_the_permissive_defaults():
    from harness.runtimes.base import AdapterDefaults

    class Bare(AdapterDefaults):
        name = "bare"

    bare = Bare()
    assert bare.weight_layout == "transformers" and bare.capabilities.weight_digests is None
    assert bare.capabilities.why_weights_unreadable("AnyForCausalLM", "cuda", 2) is None
    assert bare.check_na_reason("weight_parity", Cell("bare", "cpu", "m", "none"), card()) is None


def test_a_runtime_without_digests_says_so_when_it_returns_no_tensors_by_name():
    caps = Capabilities("Acme", weights_by_name=frozenset({"A"}))
    assert caps.why_weights_unreadable("B", "npu", 1) == ("Acme's B does not implement /get_weights_by_name (only A do), "
                                                         "and it publishes no weight digests")
    assert WeightDigests().why_not("cuda", 1) is None  # sha256 everywhere unless declared otherwise
    assert WeightDigests(other_hash_devices=("xpu",), other_hash="a SYCL kernel").why_not("xpu", 1).startswith(
        "on xpu the runtime's /weights_checker hashes with a SYCL kernel, not sha256")


class CountingDigests:
    """A runtime client that serves every tensor by value and counts the digest requests it gets."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        self.state, self.digest_calls = state, 0

    def weight(self, name: str, truncate_rows: int | None = None) -> np.ndarray | None:
        return self.state.get(name)

    def weight_digests(self) -> list[dict]:
        self.digest_calls += 1
        return [{"tp_rank": 0, "tp_size": 1, "checksums": {}}]

    def generate(self, *a, **k):  # pragma: no cover - not used by weight parity
        raise NotImplementedError

    def server_info(self) -> dict:
        return {}


@pytest.mark.parametrize("runtime, asked", [("hf", 0), ("vllm", 0), ("sglang", 1)])
def test_weight_parity_asks_for_digests_only_of_a_runtime_that_declares_them(tmp_path: Path, runtime, asked):
    tensors = {"model.norm.weight": np.arange(4, dtype=np.float32)}
    write_safetensors(tmp_path / "model.safetensors", tensors)
    client = CountingDigests(tensors)
    ctx = CheckContext(cell=Cell(runtime, "cpu", "m", "none"), card=card(), checkpoint=tmp_path, client=client,
                       weight_layout="transformers")
    assert ctx.capabilities == RUNTIMES.get(runtime).capabilities
    assert WEIGHT_PARITY.run(ctx).status == "pass"
    assert client.digest_calls == asked


def test_every_registered_check_declares_its_meaning():
    for name in CHECKS:
        check = CHECKS.get(name)
        assert isinstance(check, CheckDefaults), name
        assert all(hasattr(rule, "why") for rule in check.na_rules)
        assert check.figure({}, {}).headline == ""  # nothing to say of a result with no metrics
    assert CHECKS.get("weight_parity").tensor_table == "worst"
    assert CHECKS.get("accuracy").warning({"power_warning": "too few"}) == "too few"
    assert CHECKS.get("logprob_parity").warning({"power_warning": "too few"}) is None


def test_each_check_words_its_own_headline():
    assert CHECKS.get("accuracy").figure({"correct": 11, "total": 12}, {}).headline == "11/12"
    assert CHECKS.get("logprob_parity").figure({"max_abs_delta": 3.1e-7}, {}).headline == "max|Δ| 3.1e-7"
    assert CHECKS.get("mode_active").figure({"offloaded_bytes": 295936}, {}).headline == "289 KiB offloaded"
    assert CHECKS.get("mode_active").figure({"offloaded_bytes": 0}, {}).headline == "0 B offloaded"
    fig = CHECKS.get("weight_parity").figure({"tensors_compared": 0, "tensors_by_digest": 45, "tensors_digest_differs": 1}, {})
    assert fig.headline == "45 by digest, 1 differ"
    assert dict(fig.facts)["by digest"] == "45 tensors, 1 differ" and "tensors_by_digest" in fig.shown


def test_a_third_party_check_gets_the_defaults(tmp_path: Path):
    class Latency(CheckDefaults):
        name, key_metric = "latency", "p50_ms"
        na_rules = (CellRule("simulated devices have no latency", devices=("npu",)),)

    check = Latency()
    assert check.na_reason(Cell("hf", "npu", "m", "none"), card()) == "simulated devices have no latency"
    assert check.na_reason(Cell("hf", "cpu", "m", "none"), card()) is None
    assert check.warning({"anything": 1}) is None and check.tensor_table is None
    assert dataclasses.asdict(check.figure({"p50_ms": 3}, {})) == {"headline": "", "facts": (), "shown": frozenset()}
