"""The weight_parity check on a real safetensors file against a fake SGLang endpoint (rank 0 of tp 2):
quiet on correct fused layouts, zero padding and bf16 rounding in a bf16 cell; loud, naming the
tensor, on a transposed expert, a zeroed shard and non-zero padding."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.checks.base import CheckContext
from harness.checks.weight_parity import CHECK
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from tests.test_numerics_layout import checkpoint, sglang_rank0

ARCH = "Qwen2MoeForCausalLM"
MLA = "layers.1.self_attn"  # the shared fixture's MLA layer: left out, one architecture per model


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        raw = np.ascontiguousarray(t, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    path.write_bytes(len(head).to_bytes(8, "little") + head + b"".join(blobs))


class FakeSGLang:
    """/get_weights_by_name over a dict of rank-0 tensors, truncating rows like SGLang does."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        self.state = state
        self.asked: list[str] = []

    def weight(self, name: str, truncate_rows: int | None = None) -> np.ndarray | None:
        self.asked.append(name)
        t = self.state.get(name)
        return None if t is None else t[:truncate_rows] if truncate_rows else t

    def generate(self, *a, **k):  # pragma: no cover - not used by weight parity
        raise NotImplementedError

    def server_info(self) -> dict:
        return {}


def bf16(t: np.ndarray) -> np.ndarray:
    return ((t.astype(np.float32).view(np.uint32) + 0x8000) & 0xFFFF0000).view(np.float32)


def rank0(ckpt: dict[str, np.ndarray], tp: int) -> dict[str, np.ndarray]:
    return {k: v for k, v in sglang_rank0(ckpt, tp).items() if MLA not in k}


@pytest.fixture
def ckpt_dir(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    ckpt = checkpoint()
    write_safetensors(tmp_path / "model.safetensors", {k: v for k, v in ckpt.items() if MLA not in k})
    return tmp_path, ckpt


def run(ckpt_dir: Path, state: dict[str, np.ndarray], *, tp: int = 2, dtype: str = "float32", rows: int | None = None,
        client: FakeSGLang | None = None):
    card = ModelCard.from_mapping({"name": "m", "architecture": ARCH, "source": {"path": "p"},
                                   "parity": {"truncate_rows": rows} if rows else {}}, "m")
    ctx = CheckContext(cell=Cell("sglang", "npu", "m", "none", dtype, tp), card=card, checkpoint=ckpt_dir,
                       client=client or FakeSGLang(state), weight_layout="sglang")
    return CHECK.run(ctx)


def test_correct_fused_layouts_at_tp2_pass(ckpt_dir):
    path, ckpt = ckpt_dir
    client = FakeSGLang(rank0(ckpt, 2))
    r = run(path, client.state, client=client)
    assert r.status == "pass", r.reason
    assert r.metrics["tensors_compared"] == len([k for k in ckpt if MLA not in k])
    assert r.metrics["tensors_unavailable"] == 0 and r.metrics["layout"] == "sglang"
    assert {"model.layers.0.self_attn.qkv_proj.weight", "model.layers.1.mlp.experts.w13_weight",
            "model.layers.1.mlp.shared_experts.gate_up_proj.weight"} <= set(client.asked)
    assert "model.layers.0.self_attn.q_proj.weight" not in client.asked  # the fused name answered first


def test_a_transposed_expert_is_named(ckpt_dir):
    path, ckpt = ckpt_dir
    state = rank0(ckpt, 2)
    w13 = state["model.layers.1.mlp.experts.w13_weight"]
    w13[2] = w13[2].T.copy().reshape(w13[2].shape)
    r = run(path, state)
    assert r.status == "fail"
    assert r.metrics["worst_tensor"] in ("model.layers.1.mlp.experts.2.gate_proj.weight",
                                         "model.layers.1.mlp.experts.2.up_proj.weight")
    assert r.metrics["tensors_failed"] == 2 and "via model.layers.1.mlp.experts.w13_weight" in r.reason


def test_a_zeroed_shard_and_nonzero_padding_are_named(ckpt_dir):
    path, ckpt = ckpt_dir
    state = rank0(ckpt, 1)
    state["model.layers.0.mlp.down_proj.weight"] = state["model.layers.0.mlp.down_proj.weight"].copy()
    state["model.layers.0.mlp.down_proj.weight"][8:] = 0  # rank 1's half of the output rows
    state["model.embed_tokens.weight"][-1] = 1e-3
    r = run(path, state, tp=1)
    failed = {w["name"]: w for w in r.details["worst"] if not w["ok"]}
    assert r.status == "fail" and set(failed) == {"model.layers.0.mlp.down_proj.weight", "model.embed_tokens.weight"}
    assert r.metrics["worst_tensor"] == "model.layers.0.mlp.down_proj.weight"
    assert r.metrics["nonzero_padding"] == 1 and "non-zero padding" in failed["model.embed_tokens.weight"]["note"]


def test_bf16_rounding_passes_in_a_bf16_cell_and_fails_in_a_float32_cell(ckpt_dir):
    path, ckpt = ckpt_dir
    state = {k: bf16(v) for k, v in rank0(ckpt, 2).items()}
    ok = run(path, state, dtype="bfloat16")
    assert ok.status == "pass" and ok.metrics["dtype"] == "bfloat16" and ok.metrics["rtol"] == 8e-3
    assert 0.4 < ok.metrics["max_tol_ratio"] <= 0.5  # rounding uses at most half the tolerance: benign with margin
    bad = run(path, state, dtype="float32")
    assert bad.status == "fail" and bad.metrics["tensors_failed"] == bad.metrics["tensors_compared"]


def test_truncated_rows_still_compare_every_tensor_it_can(ckpt_dir):
    path, ckpt = ckpt_dir
    r = run(path, rank0(ckpt, 1), tp=1, rows=4)
    assert r.status == "pass", r.reason
    unavailable = set(r.details["unavailable"])
    why = {u["name"]: u["why"] for u in r.details["unavailable_reasons"]}
    assert "beyond the 4 rows" in why["model.layers.0.self_attn.k_proj.weight"]
    assert "model.layers.0.self_attn.k_proj.weight" in unavailable  # rows 16.. of qkv_proj were not fetched
    assert "model.layers.0.self_attn.q_proj.weight" not in unavailable
