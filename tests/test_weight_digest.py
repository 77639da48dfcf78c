"""Weight parity by digest: runtime tensors rebuilt from the checkpoint by the layout table, hashed
as SGLang's /weights_checker hashes them, compared with a runtime that returns no values.

The runtime side is built independently, from SGLang's loaders (tests.test_numerics_layout's
``sglang_rank0``), never from the layout rules under test.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from harness.checks.base import CheckContext
from harness.checks.weight_parity import CHECK
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.numerics.checkpoint import Checkpoint
from harness.numerics.layout import Layout
from harness.numerics.layout_build import CannotBuild, as_dtype, build, digest, members_by_runtime
from tests.test_numerics_layout import checkpoint, sglang_rank0
from tests.test_numerics_weight_parity import write_safetensors

ARCH = "Qwen2MoeForCausalLM"
MLA = "layers.1.self_attn"  # the shared fixture's MLA layer belongs to another architecture
W13, W2 = "model.layers.1.mlp.experts.w13_weight", "model.layers.1.mlp.experts.w2_weight"


def sglang_digest(t: np.ndarray) -> str:
    """SGLang's tensor_hash on a CPU/NPU tensor, written out: sha256 of the bytes, first 8, hex."""
    return f"{int.from_bytes(hashlib.sha256(np.ascontiguousarray(t).tobytes()).digest()[:8], 'big'):016x}"


class DigestOnlySGLang:
    """An SGLang model class without /get_weights_by_name: values never, digests always."""

    def __init__(self, state: dict[str, np.ndarray], tp_size: int = 1) -> None:
        self.state, self.tp_size = state, tp_size

    def weight(self, name: str, truncate_rows: int | None = None) -> None:
        return None

    def weight_digests(self) -> list[dict]:
        return [{"tp_rank": 0, "tp_size": self.tp_size, "checksums": {k: sglang_digest(v) for k, v in self.state.items()}}]

    def generate(self, *a, **k):  # pragma: no cover - not used by weight parity
        raise NotImplementedError

    def server_info(self) -> dict:
        return {}


@pytest.fixture
def ckpt_dir(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    full = checkpoint()
    write_safetensors(tmp_path / "model.safetensors", {k: v for k, v in full.items() if MLA not in k})
    return tmp_path, full


def state(full: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What SGLang holds at tp 1 for the checkpoint written (its MLA layer left out)."""
    return {k: v for k, v in sglang_rank0(full, 1).items() if MLA not in k}


def run(path: Path, client: DigestOnlySGLang, *, device: str = "cpu", tp: int = 1, dtype: str = "float32"):
    card = ModelCard.from_mapping({"name": "m", "architecture": ARCH, "source": {"path": "p"}}, "m")
    ctx = CheckContext(cell=Cell("sglang", device, "m", "none", dtype, tp), card=card, checkpoint=path,
                       client=client, weight_layout="sglang")
    return CHECK.run(ctx)


def test_every_runtime_tensor_is_rebuilt_exactly_from_the_checkpoint(ckpt_dir):
    path, ckpt = ckpt_dir
    want = state(ckpt)
    ck = Checkpoint(path)
    groups = members_by_runtime(Layout.load("sglang"), ck.names(), ARCH)
    assert set(groups) == set(want)
    for name, members in groups.items():
        got = build(members, ck.read, ck.shape)
        assert got.shape == want[name].shape and np.array_equal(got, want[name]), name


def test_a_rule_without_the_padding_size_cannot_rebuild(ckpt_dir):
    path, _ = ckpt_dir
    ck = Checkpoint(path)
    [(name, mapped)] = members_by_runtime(Layout.load("vllm"), ["lm_head.weight"], ARCH)["lm_head.weight"]
    with pytest.raises(CannotBuild, match="multiple"):
        build([(name, mapped)], ck.read, ck.shape)


def test_correct_runtime_passes_by_digest_alone(ckpt_dir):
    path, ckpt = ckpt_dir
    r = run(path, DigestOnlySGLang(state(ckpt)))
    assert r.status == "pass", r.reason
    assert r.metrics["tensors_by_digest"] == len([k for k in ckpt if MLA not in k])
    assert r.metrics["tensors_unavailable"] == 0
    assert r.metrics["tensors_compared"] == 0 and "byte-identical by digest" in r.reason


def test_wrongly_stacked_experts_fail_by_name(ckpt_dir):
    path, ckpt = ckpt_dir
    bad = state(ckpt)
    bad[W13] = bad[W13][[0, 2, 1, 3]]  # experts 1 and 2 stacked in each other's place
    r = run(path, DigestOnlySGLang(bad))
    assert r.status == "fail" and W13 in r.reason and r.metrics["worst_tensor"] == W13
    assert r.metrics["tensors_digest_differs"] == 8  # gate and up of the 4 experts it is built from
    assert [d["runtime_name"] for d in r.details["digests"] if not d["ok"]] == [W13]


def test_a_format_cast_expert_fails_where_the_server_still_answers(ckpt_dir):
    path, ckpt = ckpt_dir
    bad = state(ckpt)
    w2 = bad[W2].copy()
    w2[3] = (w2[3].view(np.uint32) & 0xFFFF0000).view(np.float32)  # one expert truncated to bf16 on load
    bad[W2] = w2
    r = run(path, DigestOnlySGLang(bad))
    assert r.status == "fail" and W2 in r.reason and W13 not in r.reason


def test_a_bf16_cell_hashes_the_rounded_bytes(ckpt_dir):
    path, ckpt = ckpt_dir
    torch = pytest.importorskip("torch")
    held = {k: torch.from_numpy(v).to(torch.bfloat16).view(torch.int16).numpy() for k, v in state(ckpt).items()}
    assert run(path, DigestOnlySGLang(held), dtype="bfloat16").status == "pass"
    assert run(path, DigestOnlySGLang(held), dtype="float32").status == "fail"


def test_bf16_rounding_matches_torch_on_ties_and_extremes():
    torch = pytest.importorskip("torch")
    values = np.array([1.0, -2.5, 1 + 2**-8, 1 + 3 * 2**-8, 3.0e38, -1.0e-40, 0.0, -0.0, 65504.0, 1e-8], dtype=np.float32)
    values = np.concatenate([values, np.random.default_rng(1).standard_normal(4096).astype(np.float32)])
    want = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(as_dtype(values, "bfloat16"), want)
    assert digest(values, "bfloat16") == sglang_digest(want)


@pytest.mark.parametrize("device, tp, why", [("cuda", 1, "Triton kernel"), ("rocm", 1, "Triton kernel"),
                                             ("npu", 2, "per tp rank shard")])
def test_digests_that_cannot_be_reproduced_leave_tensors_unexposed_with_the_reason(ckpt_dir, device, tp, why):
    path, ckpt = ckpt_dir
    r = run(path, DigestOnlySGLang(state(ckpt), tp_size=tp), device=device, tp=tp)
    assert r.status == "na" and r.metrics["tensors_by_digest"] == 0
    assert all(why in u["why"] for u in r.details["unavailable_reasons"])


def test_the_client_reads_sglangs_weights_checker_answer(monkeypatch):
    from harness.runtimes.client import NativeClient

    answer = {"success": True, "message": "Success.", "per_engine_checksum": "54e8",  # as SGLang 0.5.23 sends it
              "ranks": [{"checksums": {"lm_head.weight": "98d3f97b2e85727f"}, "per_gpu_checksum": "ab",
                         "parallelism_info": [{"role": "target", "tp_rank": 0, "tp_size": 1, "dp_rank": 0}]}]}

    class Reply:
        status_code, text = 200, ""

        def json(self):
            return answer

    client = NativeClient("http://127.0.0.1:9", "cell")
    asked = []
    monkeypatch.setattr(client.session, "post", lambda url, json, timeout: asked.append((url, json)) or Reply())
    assert client.weight_digests() == [{"tp_rank": 0, "tp_size": 1, "checksums": {"lm_head.weight": "98d3f97b2e85727f"}}]
    assert asked == [("http://127.0.0.1:9/weights_checker", {"action": "checksum"})]
    Reply.status_code = 404
    assert client.weight_digests() is None  # a runtime without the endpoint (the hf reference)


def test_nan_has_no_reproducible_bf16_bytes():
    with pytest.raises(CannotBuild, match="NaN"):
        as_dtype(np.array([1.0, np.nan], dtype=np.float32), "bfloat16")
    assert digest(np.array([1.0, np.nan], dtype=np.float32), "float32")  # float32 bytes are the checkpoint's own


def test_a_bf16_checkpoint_is_hashed_as_stored_and_agrees_with_the_widened_cast():
    from harness.numerics.layout_build import digest
    from harness.numerics.tensors import BF16, widen

    rng = np.random.default_rng(7)
    stored = rng.integers(0, 0x7F7F, size=(64, 48), dtype=np.uint16).view(BF16)  # finite bf16 patterns
    assert np.array_equal(as_dtype(stored, "bfloat16"), as_dtype(widen(stored), "bfloat16"))
    assert digest(stored, "bfloat16") == digest(widen(stored), "bfloat16")
    assert digest(stored, "float32") == digest(widen(stored), "float32")
    assert digest(stored.T, "bfloat16") == digest(widen(stored).T, "bfloat16")  # a transposed view, made contiguous
