"""SGLang's layout table (harness/numerics/layouts/sglang.yaml) against tensors built the way SGLang's loaders
build them: fused q/k/v, gate/up, stacked MoE experts, MLA, padded vocab, rank 0 of tp 2, truncation."""
from __future__ import annotations

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.numerics.layout import CutContext, Layout, LayoutRule, LayoutUnavailable, recover

RNG = np.random.default_rng(0)
H, I, E, VOCAB, PAD = 16, 24, 4, 100, 64
LLAMA, GLM = "LlamaForCausalLM", "Glm4MoeLiteForCausalLM"


def _w(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def checkpoint() -> dict[str, np.ndarray]:
    """A two-layer checkpoint: layer 0 dense with GQA attention, layer 1 MoE with MLA attention."""
    a, m = "model.layers.0.self_attn", "model.layers.1.self_attn"
    ckpt = {"model.embed_tokens.weight": _w(VOCAB, H), "lm_head.weight": _w(VOCAB, H), "model.norm.weight": _w(H),
            f"{a}.q_proj.weight": _w(16, H), f"{a}.k_proj.weight": _w(8, H), f"{a}.v_proj.weight": _w(8, H),
            f"{a}.q_proj.bias": _w(16), f"{a}.k_proj.bias": _w(8), f"{a}.v_proj.bias": _w(8),
            f"{a}.o_proj.weight": _w(H, 16), "model.layers.0.mlp.gate_proj.weight": _w(I, H),
            "model.layers.0.mlp.up_proj.weight": _w(I, H), "model.layers.0.mlp.down_proj.weight": _w(H, I),
            f"{m}.q_a_proj.weight": _w(8, H), f"{m}.kv_a_proj_with_mqa.weight": _w(12, H),
            f"{m}.q_b_proj.weight": _w(32, 8), f"{m}.kv_b_proj.weight": _w(32, 8),
            "model.layers.1.mlp.gate.weight": _w(E, H),
            "model.layers.1.mlp.shared_experts.gate_proj.weight": _w(I, H),
            "model.layers.1.mlp.shared_experts.up_proj.weight": _w(I, H),
            "model.layers.1.mlp.shared_experts.down_proj.weight": _w(H, I)}
    for e in range(E):
        for proj, shape in (("gate_proj", (I, H)), ("up_proj", (I, H)), ("down_proj", (H, I))):
            ckpt[f"model.layers.1.mlp.experts.{e}.{proj}.weight"] = _w(*shape)
    return ckpt


def sglang_rank0(ckpt: dict[str, np.ndarray], tp: int) -> dict[str, np.ndarray]:
    """What rank 0 of SGLang holds (written from SGLang's weight loaders, not from the rules)."""
    part = lambda t: t[: t.shape[0] // tp]  # noqa: E731  (column-parallel shard of rank 0)
    a, m, x = "model.layers.0.self_attn", "model.layers.1.self_attn", "model.layers.1.mlp.experts"
    out = {k: v for k, v in ckpt.items() if k.endswith(("norm.weight", "mlp.gate.weight"))}
    for kind in ("weight", "bias"):
        out[f"{a}.qkv_proj.{kind}"] = np.concatenate([part(ckpt[f"{a}.{p}_proj.{kind}"]) for p in "qkv"])
    out[f"{a}.o_proj.weight"] = ckpt[f"{a}.o_proj.weight"]  # all-gathered by get_weights_by_name
    for mlp in ("model.layers.0.mlp", "model.layers.1.mlp.shared_experts"):
        out[f"{mlp}.gate_up_proj.weight"] = np.concatenate([part(ckpt[f"{mlp}.gate_proj.weight"]),
                                                            part(ckpt[f"{mlp}.up_proj.weight"])])
        out[f"{mlp}.down_proj.weight"] = ckpt[f"{mlp}.down_proj.weight"]
    out[f"{m}.fused_qkv_a_proj_with_mqa.weight"] = np.concatenate([ckpt[f"{m}.q_a_proj.weight"],
                                                                   ckpt[f"{m}.kv_a_proj_with_mqa.weight"]])
    out[f"{m}.q_b_proj.weight"], out[f"{m}.kv_b_proj.weight"] = part(ckpt[f"{m}.q_b_proj.weight"]), part(ckpt[f"{m}.kv_b_proj.weight"])
    out[f"{x}.w13_weight"] = np.stack([np.concatenate([part(ckpt[f"{x}.{e}.gate_proj.weight"]),
                                                       part(ckpt[f"{x}.{e}.up_proj.weight"])]) for e in range(E)])
    out[f"{x}.w2_weight"] = np.stack([ckpt[f"{x}.{e}.down_proj.weight"][:, : I // tp] for e in range(E)])
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        padded = np.zeros((-(-VOCAB // PAD) * PAD, H), dtype=np.float32)
        padded[:VOCAB] = ckpt[name]
        out[name] = padded[: padded.shape[0] // tp]
    return out


def recovered(layout: Layout, state: dict[str, np.ndarray], ckpt: dict[str, np.ndarray], name: str, arch: str,
              ctx: CutContext):
    for mapped in layout.candidates(name, arch):
        if mapped.runtime_name in state:
            return mapped, recover(state[mapped.runtime_name], mapped, name, ctx)
    raise AssertionError(f"{name}: no candidate held by the runtime")


@pytest.mark.parametrize("tp", [1, 2])
def test_every_checkpoint_tensor_is_cut_back_out_of_sglangs_rank0_tensors(tp):
    ckpt, layout = checkpoint(), Layout.load("sglang")
    state = sglang_rank0(ckpt, tp)
    ctx = CutContext(shape_of=lambda n: ckpt[n].shape, tp=tp)
    for name, want in ckpt.items():
        arch = GLM if ".layers.1." in name else LLAMA
        mapped, got = recovered(layout, state, ckpt, name, arch, ctx)
        assert np.array_equal(got.tensor, want[got.region]), (name, mapped.runtime_name, got.region)
        assert got.padding_max_abs == 0.0
        if tp == 2 and mapped.runtime_name.endswith(("qkv_proj.weight", "w13_weight", "gate_up_proj.weight")):
            assert got.partial and got.tensor.shape[0] == want.shape[0] // 2


def test_fused_names_are_the_ones_sglang_uses():
    layout = Layout.load("sglang")
    first = lambda n, arch=LLAMA: layout.candidates(n, arch)[0].runtime_name  # noqa: E731
    assert first("model.layers.3.self_attn.k_proj.weight") == "model.layers.3.self_attn.qkv_proj.weight"
    assert first("model.layers.3.mlp.up_proj.weight") == "model.layers.3.mlp.gate_up_proj.weight"
    assert first("model.layers.1.mlp.experts.7.up_proj.weight") == "model.layers.1.mlp.experts.w13_weight"
    assert first("model.layers.1.mlp.experts.7.down_proj.weight") == "model.layers.1.mlp.experts.w2_weight"
    assert first("model.layers.1.self_attn.q_a_proj.weight", GLM) == "model.layers.1.self_attn.fused_qkv_a_proj_with_mqa.weight"
    # MLA without q_lora (DeepSeek-V2-Lite) keeps q_proj: the architecture filter keeps it out of qkv_proj
    assert first("model.layers.1.self_attn.q_proj.weight", "DeepseekV2ForCausalLM") == "model.layers.1.self_attn.q_proj.weight"


def test_nonzero_vocab_padding_is_reported_with_its_rows():
    ckpt = checkpoint()
    state = sglang_rank0(ckpt, 1)
    state["lm_head.weight"][VOCAB + 3, 5] = 0.5
    _, got = recovered(Layout.load("sglang"), state, ckpt, "lm_head.weight", LLAMA,
                       CutContext(shape_of=lambda n: ckpt[n].shape))
    assert np.array_equal(got.tensor, ckpt["lm_head.weight"])  # the real rows are still right
    assert got.padding_max_abs == 0.5 and "padded rows 103..103" in got.padding_note


def test_truncated_rows_compare_what_is_there_and_report_the_rest_unavailable():
    ckpt, layout = checkpoint(), Layout.load("sglang")
    state = {k: v[:10] for k, v in sglang_rank0(ckpt, 1).items()}  # the endpoint's truncate_size=10
    ctx = CutContext(shape_of=lambda n: ckpt[n].shape, truncated_rows=10)
    _, q = recovered(layout, state, ckpt, "model.layers.0.self_attn.q_proj.weight", LLAMA, ctx)
    assert q.region[0] == slice(0, 10) and np.array_equal(q.tensor, ckpt["model.layers.0.self_attn.q_proj.weight"][:10])
    mapped = layout.candidates("model.layers.0.self_attn.k_proj.weight", LLAMA)[0]
    with pytest.raises(LayoutUnavailable, match="beyond the 10 rows"):
        recover(state[mapped.runtime_name], mapped, "model.layers.0.self_attn.k_proj.weight", ctx)


def test_experts_on_another_rank_are_unavailable_not_wrong():
    ckpt, layout = checkpoint(), Layout.load("sglang")
    state = sglang_rank0(ckpt, 1)
    state["model.layers.1.mlp.experts.w13_weight"] = state["model.layers.1.mlp.experts.w13_weight"][:2]  # EP: 2 local
    mapped = layout.candidates("model.layers.1.mlp.experts.3.gate_proj.weight", GLM)[0]
    with pytest.raises(LayoutUnavailable, match="index 3"):
        recover(state[mapped.runtime_name], mapped, "model.layers.1.mlp.experts.3.gate_proj.weight",
                CutContext(shape_of=lambda n: ckpt[n].shape))


def test_transposed_expert_storage_is_undone_by_a_rule():
    """SGLang with triton kernels stores w13 as [E, H, 2I]: one transpose op more."""
    ckpt = checkpoint()
    rule = LayoutRule.from_mapping({
        "match": r"^(?P<p>.+\.experts)\.(?P<e>\d+)\.up_proj\.weight$", "runtime": "{p}.w13_weight",
        "ops": [{"index": "e"}, {"transpose": [0, 1]}, {"chunk": {"dim": 0, "part": 1, "parts": 2}}]}, "t")
    w13 = np.swapaxes(sglang_rank0(ckpt, 1)["model.layers.1.mlp.experts.w13_weight"], 1, 2)
    name = "model.layers.1.mlp.experts.2.up_proj.weight"
    got = recover(w13, Layout("t", (rule,)).candidates(name)[0], name, CutContext(shape_of=lambda n: ckpt[n].shape))
    assert np.array_equal(got.tensor, ckpt[name])


def test_a_concat_rule_naming_a_missing_member_says_how_to_fix_it():
    rule = LayoutRule.from_mapping({"match": r"^(?P<p>.+)\.a$", "runtime": "{p}.ab",
                                    "ops": [{"concat": {"dim": 0, "members": ["{p}.a", "{p}.b"]}}]}, "t")
    shapes = {"x.a": (2, 2)}
    with pytest.raises(ConfigError, match="concat member x.b is not in the checkpoint"):
        recover(np.zeros((4, 2)), Layout("t", (rule,)).candidates("x.a")[0], "x.a",
                CutContext(shape_of=lambda n: shapes[n]))
    with pytest.raises(ConfigError, match="architectures"):
        LayoutRule.from_mapping({"match": "x", "runtime": "y", "architectures": "Llama"}, "t")
