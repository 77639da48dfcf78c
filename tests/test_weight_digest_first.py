"""SGLang weight parity digest first: every tensor by ``/weights_checker`` digest, values fetched
only to size the error of a tensor whose digest differs.

The runtime side is written out here from SGLang's loaders (stacked experts, fused q/k/v and
gate/up, vocabulary padded to 64 rows), never from the layout rules under test. The checkpoint
has a 128-expert layer, so a corrupted expert can sit beyond the 64 rows a sample looked at.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from harness.checks import weight_digest
from harness.checks.base import CheckContext, CheckResult
from harness.checks.weight_parity import CHECK
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from tests.test_numerics_weight_parity import write_safetensors

ARCH = "Qwen3MoeForCausalLM"
H, I, E, VOCAB = 8, 4, 128, 100
ATTN, EXPERTS = "model.layers.0.self_attn", "model.layers.0.mlp.experts"
Q_PROJ, QKV = f"{ATTN}.q_proj.weight", f"{ATTN}.qkv_proj.weight"
W2, LATE_EXPERT = f"{EXPERTS}.w2_weight", f"{EXPERTS}.100.down_proj.weight"


def checkpoint() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    w = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    ckpt = {"model.embed_tokens.weight": w(VOCAB, H), "lm_head.weight": w(VOCAB, H), "model.norm.weight": w(H),
            Q_PROJ: w(32, H), f"{ATTN}.k_proj.weight": w(8, H), f"{ATTN}.v_proj.weight": w(8, H),
            f"{ATTN}.o_proj.weight": w(H, 32), "model.layers.0.mlp.gate.weight": w(E, H)}
    for e in range(E):
        for proj, shape in (("gate_proj", (I, H)), ("up_proj", (I, H)), ("down_proj", (H, I))):
            ckpt[f"{EXPERTS}.{e}.{proj}.weight"] = w(*shape)
    return ckpt


def sglang_state(ckpt: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What SGLang holds at tp 1 (from its loaders)."""
    out = {k: ckpt[k] for k in ("model.norm.weight", f"{ATTN}.o_proj.weight", "model.layers.0.mlp.gate.weight")}
    out[QKV] = np.concatenate([ckpt[f"{ATTN}.{p}_proj.weight"] for p in "qkv"])
    out[f"{EXPERTS}.w13_weight"] = np.stack([np.concatenate([ckpt[f"{EXPERTS}.{e}.gate_proj.weight"],
                                                             ckpt[f"{EXPERTS}.{e}.up_proj.weight"]]) for e in range(E)])
    out[W2] = np.stack([ckpt[f"{EXPERTS}.{e}.down_proj.weight"] for e in range(E)])
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        out[name] = np.zeros((128, H), np.float32)
        out[name][:VOCAB] = ckpt[name]
    return out


class SGLangServer:
    """``/weights_checker`` always; ``/get_weights_by_name`` (first rows, like truncate_size) only
    for model classes that implement it (``by_value``). Records the value requests."""

    def __init__(self, state: dict[str, np.ndarray], by_value: bool) -> None:
        self.state, self.by_value = state, by_value
        self.asked: list[tuple[str, int | None]] = []

    def weight(self, name: str, truncate_rows: int | None = None) -> np.ndarray | None:
        self.asked.append((name, truncate_rows))
        if not self.by_value or name not in self.state:
            return None
        return self.state[name][:truncate_rows].copy()

    def weight_digests(self) -> list[dict]:
        sums = {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).digest()[:8].hex() for k, v in self.state.items()}
        return [{"tp_rank": 0, "tp_size": 1, "checksums": sums}]

    def server_info(self) -> dict:
        return {}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    tensors = checkpoint()
    path = tmp_path_factory.mktemp("moe128")
    write_safetensors(path / "model.safetensors", tensors)
    return path, tensors


def parity(path: Path, server: SGLangServer, device: str = "cpu", truncate_rows: int | None = None) -> CheckResult:
    card = ModelCard.from_mapping({"name": "m", "architecture": ARCH, "source": {"path": "p"}}, "m")
    if truncate_rows:
        card = ModelCard.from_mapping({"name": "m", "architecture": ARCH, "source": {"path": "p"},
                                       "parity": {"truncate_rows": truncate_rows}}, "m")
    ctx = CheckContext(cell=Cell("sglang", device, "m", "none"), card=card, checkpoint=path, client=server,
                       weight_layout="sglang")
    return CHECK.run(ctx)


@pytest.mark.parametrize("by_value", [True, False], ids=["llama-class", "moe-class"])
def test_a_clean_runtime_is_verified_in_full_by_digest_without_fetching_a_value(ckpt, by_value):
    path, tensors = ckpt
    server = SGLangServer(sglang_state(tensors), by_value)
    r = parity(path, server, truncate_rows=64)  # a card's sample no longer matters where digests reach
    assert r.status == "pass", r.reason
    assert server.asked == []
    assert r.metrics["coverage"] == 1.0 and r.metrics["coverage_by_digest"] == 1.0
    assert r.metrics["coverage_by_value"] == 0.0 and r.details["not_verified"] == []
    assert r.metrics["tensors_by_digest"] == len(tensors) and r.metrics["tensors_compared"] == 0
    assert r.reason.endswith("100 % of the checkpoint's elements verified")


def test_a_tensor_whose_second_half_is_wrong_is_named_with_its_error(ckpt):
    path, tensors = ckpt
    state = sglang_state(tensors)
    state[QKV] = state[QKV].copy()
    state[QKV][16:32] += 0.25  # rows 16..31: the second half of q_proj (a tp shard never loaded right)
    server = SGLangServer(state, by_value=True)
    r = parity(path, server)
    assert r.status == "fail"
    assert QKV in r.reason and f"worst {Q_PROJ} max |Δ| 0.25" in r.reason
    assert r.metrics["worst_tensor"] == Q_PROJ and r.metrics["max_abs"] == pytest.approx(0.25)
    assert r.details["worst"][0]["frac_outside"] == pytest.approx(0.5)
    assert server.asked == [(QKV, None)]  # only the differing tensor travels, once
    [differ] = [d for d in r.details["digests"] if not d["ok"]]
    assert differ["runtime_name"] == QKV and differ["max_abs"] == pytest.approx(0.25)
    assert r.metrics["coverage"] == 1.0 and r.metrics["tensors_digest_differs"] == 3


def test_a_late_expert_of_a_moe_class_is_named_by_digest_alone(ckpt):
    path, tensors = ckpt
    state = sglang_state(tensors)
    state[W2] = state[W2].copy()
    state[W2][100] *= 1.5
    r = parity(path, SGLangServer(state, by_value=False))
    assert r.status == "fail" and W2 in r.reason
    assert "digest differs, no values exposed" in r.reason
    assert r.metrics["worst_tensor"] == W2 and r.metrics["tensors_digest_differs"] == E
    assert r.metrics["coverage"] == 1.0 and r.metrics["coverage_by_digest"] == 1.0


def test_a_late_expert_of_a_class_with_values_is_sized_within_the_row_budget(ckpt, monkeypatch):
    path, tensors = ckpt
    state = sglang_state(tensors)
    state[W2] = state[W2].copy()
    state[W2][100] *= 1.5
    r = parity(path, SGLangServer(state, by_value=True))
    assert r.status == "fail" and r.metrics["worst_tensor"] == LATE_EXPERT
    assert f"worst {LATE_EXPERT}" in r.reason
    want = np.abs(tensors[LATE_EXPERT] * 0.5).max()
    assert r.metrics["max_abs"] == pytest.approx(want, rel=1e-6)
    monkeypatch.setattr(weight_digest, "SIZING_ELEMENTS", 64 * H * I)  # room for the first 64 experts only
    server = SGLangServer(state, by_value=True)
    r = parity(path, server)
    assert r.status == "fail" and W2 in r.reason, r.reason
    assert (W2, 64) in server.asked
    assert "its first 64 rows are within tolerance" in r.reason and "the difference lies beyond them" in r.reason


def test_bytes_that_differ_within_tolerance_pass_by_value(ckpt):
    path, tensors = ckpt
    state = sglang_state(tensors)
    norm = state["model.norm.weight"].copy()
    norm[0] = np.nextafter(norm[0], np.float32(np.inf))  # one ulp: another rounding of the same value
    state["model.norm.weight"] = norm
    r = parity(path, SGLangServer(state, by_value=True))
    assert r.status == "pass", r.reason
    assert r.metrics["tensors_compared"] == 1 and r.metrics["coverage"] == 1.0
    assert r.metrics["coverage_by_value"] == pytest.approx(H / sum(math.prod(t.shape) for t in tensors.values()))
    assert 0 < r.metrics["max_abs"] < 1e-6


def test_where_digests_cannot_be_reproduced_values_are_compared_in_full(ckpt):
    path, tensors = ckpt
    server = SGLangServer(sglang_state(tensors), by_value=True)
    r = parity(path, server, device="cuda")
    assert r.status == "pass", r.reason
    assert r.metrics["coverage_by_value"] == 1.0 and r.metrics["tensors_by_digest"] == 0
