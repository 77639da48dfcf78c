"""The first divergent layer without a runtime process: the maths (harness/numerics/layerdiff.py), the reference's
store and the runtime answer (harness/reference/layerstates.py), the modes (harness/checks/layer_divergence.py),
and the hf side's hooks with a one-layer compute fault on a real tiny model, in-process."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from harness.checks.base import CheckContext, CheckResult
from harness.checks.layer_divergence import LayerProbe
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.config.options import parse_layer_diff
from harness.config.refspec import DEFAULT_REFERENCE, ReferenceSpec
from harness.errors import ConfigError
from harness.numerics.layerdiff import LayerPoint, LayerStates, LayerTolerance, compare
from harness.reference.layerstates import LayerStateStore, LayerStatesUnavailable, fetch_layer_states, layer_key
from harness.reference.store import REFERENCE_DIR_ENV, default_options

POINTS = ("embeddings", "0:attention", "0:mlp", "0:layer", "1:attention", "1:moe", "1:layer", "final:norm")
PROMPTS = ("a", "b")


def states(scale_from: int | None = None, factor: float = 1.05, seed: int = 0) -> LayerStates:
    """Random reference-like states; from point ``scale_from`` on, every vector scaled by ``factor``."""
    values = np.random.default_rng(seed).standard_normal((len(PROMPTS), len(POINTS), 16)).astype(np.float32)
    if scale_from is not None:
        values[:, scale_from:, :] *= factor
    return LayerStates.build(POINTS, values, PROMPTS)


# ---- the maths ----------------------------------------------------------------------------------

def test_points_read_as_layers_and_blocks():
    assert LayerPoint.parse("3:attention").label == "layer 3 attention output"
    assert LayerPoint.parse("1:moe").label == "layer 1 MoE output"
    assert LayerPoint.parse("1:layer").label == "layer 1 output"
    assert (LayerPoint.parse("final:norm").label, LayerPoint.parse("final:norm").layer) == ("final norm", None)
    with pytest.raises(ValueError, match="neither 'embeddings', 'LAYER:MODULE'"):
        LayerPoint.parse("attention")


def test_identical_states_name_no_layer():
    div = compare(states(), states(), "float32")
    assert div.first is None and all(d.rel_error == 0.0 for d in div.diffs)
    assert div.summary() == ("no layer departs beyond float32 tolerance (rel. error <= 0.001, cosine >= 0.99999); "
                             "all 8 points equal")


def test_a_scale_error_is_named_where_it_starts_by_its_relative_error():
    div = compare(states(), states(scale_from=4), "float32")
    assert div.first is not None and div.first.point.name == "1:attention"
    assert div.first.rel_error == pytest.approx(0.05, rel=1e-4) and div.first.cosine == pytest.approx(1.0)
    assert div.summary() == "layer 1 attention output: rel. error 0.05 > 0.001, cosine 1"
    assert [r["point"] for r in div.rows(around=1)][:2] == ["layer 0 output", "layer 1 attention output"]


def test_a_rotation_is_caught_by_the_cosine_and_nan_is_a_departure():
    ref, got = states(), states()
    got.values[:, 2, :] = np.roll(ref.values[:, 2, :], 1, axis=-1) * (np.linalg.norm(ref.values[:, 2, :]) /
                                                                       np.linalg.norm(ref.values[:, 2, :]))
    div = compare(ref, got, "bfloat16")
    assert div.first.point.name == "0:mlp" and div.first.cosine < 0.999 and "< 0.999" in div.summary()
    got.values[:, 1, 0] = np.nan
    assert compare(ref, got, "bfloat16").first.point.name == "0:attention"


def test_the_tolerance_follows_the_cells_dtype():
    small = states(scale_from=4, factor=1.01)  # rel. error 0.01: far outside float32, inside bfloat16
    assert compare(states(), small, "float32").first is not None
    assert compare(states(), small, "bfloat16").first is None
    assert LayerTolerance.for_dtype("float16").max_rel_error < LayerTolerance.for_dtype("bfloat16").max_rel_error
    with pytest.raises(ConfigError, match="no layer tolerance for dtype 'int8'; known: float32, bfloat16, float16"):
        LayerTolerance.for_dtype("int8")


def test_states_of_other_prompts_or_points_are_refused():
    other = LayerStates.build(POINTS, states().values, ("a", "z"))
    with pytest.raises(ValueError, match="different prompts"):
        compare(states(), other, "float32")
    with pytest.raises(ValueError, match=r"do not hold \[prompts=2, points=3"):
        LayerStates.build(POINTS[:3], states().values, PROMPTS)


# ---- the store and the runtime's answer ------------------------------------------------------------

def test_the_reference_store_keeps_the_first_states_and_computes_once(tmp_path: Path):
    store, key = LayerStateStore(tmp_path), layer_key("digest", PROMPTS, DEFAULT_REFERENCE)
    assert store.keep("m", key, states()) and not store.keep("m", key, states(seed=1))
    calls: list[int] = []
    got, source = store.obtain("m", key, lambda: calls.append(1) or states(seed=2))
    assert source == "cache" and not calls and np.array_equal(got.values, states().values) and got.prompts == PROMPTS
    assert store.obtain("m2", key, lambda: states())[1] == "stored"
    assert key != layer_key("digest", PROMPTS, ReferenceSpec(dtype="bfloat16")) != layer_key("digest", ("a",), DEFAULT_REFERENCE)
    assert store.load("m", layer_key("other", PROMPTS, DEFAULT_REFERENCE)) is None


class FakeFetcher:
    def __init__(self, answer: LayerStates | None) -> None:
        self.answer, self.asked = answer, []

    def post_binary(self, path, payload):
        self.asked.append((path, payload))
        if self.answer is None:
            return None
        return self.answer.values, {"x-layer-points": ",".join(self.answer.names())}


class FakeClient:
    def __init__(self, answer: LayerStates | None) -> None:
        self.fetcher = FakeFetcher(answer)


def test_a_runtime_without_the_endpoint_is_said_so_with_why():
    with pytest.raises(LayerStatesUnavailable, match=r"not available from sglang 0\.5\.23: its /generate "
                                                     r"return_hidden_states gives only the final hidden state"):
        fetch_layer_states(FakeClient(None), PROMPTS, "sglang", "0.5.23")
    with pytest.raises(LayerStatesUnavailable, match="not available from vllm: .*--worker-extension-cls"):
        fetch_layer_states(object(), PROMPTS, "vllm")
    client = FakeClient(states())
    got = fetch_layer_states(client, PROMPTS, "hf")
    assert got.names() == POINTS and client.fetcher.asked == [("/layer_states", {"text": list(PROMPTS)})]


# ---- the modes ---------------------------------------------------------------------------------------

@pytest.fixture
def probe_ctx(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(REFERENCE_DIR_ENV, str(tmp_path / "ref"))
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"weights")
    card = ModelCard.from_mapping({"name": "tiny-llama", "architecture": "LlamaForCausalLM",
                                   "source": {"builder": {"arch": "llama"}}}, "c")

    def ctx(mode: str, runtime: str = "hf", dtype: str = "float32") -> CheckContext:
        options = dataclasses.replace(default_options(tmp_path / "out"), layer_diff=mode)
        return CheckContext(cell=Cell(runtime, "cpu", card.name, "none", dtype), card=card,
                            checkpoint=tmp_path / "ckpt", client=None, weight_layout="transformers", options=options)
    return ctx


def probe_states(probe: LayerProbe, scale_from: int | None = None) -> LayerStates:
    values = np.tile(states(scale_from).values[:1], (len(probe.prompts), 1, 1))
    return LayerStates.build(POINTS, values, probe.prompts)


def test_each_mode_decides_when_to_compare(probe_ctx):
    passing, failing = CheckResult("pass", "ok"), CheckResult("fail", "parity: logprobs")
    never = LayerProbe.of(probe_ctx("never"))
    assert never.judge(failing, FakeClient(None), is_reference=False) is failing
    quiet = LayerProbe.of(probe_ctx("on-failure"))
    ref = FakeClient(probe_states(quiet))
    assert quiet.judge(passing, ref, is_reference=True) is passing  # unchanged, but its states are kept
    assert quiet.store.load("tiny-llama", quiet.key) is not None
    named = quiet.judge(failing, FakeClient(probe_states(quiet, scale_from=5)), is_reference=False)
    assert (named.metrics["layer_first"], named.metrics["layer_reference_source"]) == ("1:moe", "cache")
    assert named.reason == "parity: logprobs; first divergent layer: layer 1 MoE output: rel. error 0.05 > 0.001, cosine 1"
    always = LayerProbe.of(probe_ctx("always", dtype="bfloat16")).judge(passing, ref, is_reference=False)
    assert always.reason == "ok" and always.metrics["layer_index"] is None and len(always.details["layers"]) == 8


def test_a_runtime_without_states_says_so_in_the_result(probe_ctx):
    r = LayerProbe.of(probe_ctx("on-failure", runtime="vllm")).judge(
        CheckResult("fail", "parity: logprobs"), FakeClient(None), is_reference=False, version="0.32.0")
    assert r.metrics["layer_divergence"].startswith("per-layer states not available from vllm 0.32.0: ")
    assert r.reason.endswith("first divergent layer: not available (per-layer states not available from vllm 0.32.0)")


def test_sglang_states_come_from_a_second_dumping_boot_on_cpu_only(probe_ctx):
    ctx = probe_ctx("always", runtime="sglang")
    npu = LayerProbe.of(dataclasses.replace(ctx, cell=dataclasses.replace(ctx.cell, device="npu")))
    r = npu.judge(CheckResult("fail", "parity: logprobs"), FakeClient(None), is_reference=False, version="0.5.23")
    assert r.metrics["layer_divergence"] == ("per-layer states of sglang come from a second boot of the cell with "
                                             "--debug-tensor-dump-output-folder; done for cpu cells only (on npu the "
                                             "cell's runtime still holds the card)")


def test_sglang_dump_passes_become_the_same_points_as_hf(tmp_path: Path):
    """SGLang's dump layout (checked on 0.5.23, CPU): leaf outputs, the residual added in the next norm."""
    torch = pytest.importorskip("torch")
    from harness.runtimes import sglang_dump

    def t(*rows: float) -> torch.Tensor:
        return torch.tensor([[r] * 4 for r in rows], dtype=torch.float32)

    dump = {"model.embed_tokens": t(1, 2), "model.layers.0.input_layernorm": t(9, 9),
            "model.layers.0.self_attn.o_proj": t(0, 3), "model.layers.0.mlp.down_proj": t(0, 4),
            "model.layers.1.input_layernorm": [t(0, 5), t(0, 6)], "model.layers.1.self_attn.o_proj": t(0, 7),
            "model.layers.1.mlp.experts": t(0, 8), "model.norm": [t(0, 10), t(0, 11)],
            "model.forward_batch_info.seq_lens": torch.tensor([2])}
    passes = []
    for i, scale in enumerate((1.0, 2.0)):
        passes.append(tmp_path / f"Pass{i:05d}.pt")
        torch.save({k: ([x * scale for x in v] if isinstance(v, list) else v * scale) for k, v in dump.items()},
                   passes[-1])
    names, values = sglang_dump.convert([str(p) for p in passes])
    assert names == ["embeddings", "0:attention", "0:mlp", "0:layer", "1:attention", "1:moe", "1:layer", "final:norm"]
    assert values.shape == (2, 8, 4) and values[0, :, 0].tolist() == [2, 3, 4, 6, 7, 8, 11, 10]
    assert values[1, :, 0].tolist() == [4, 6, 8, 12, 14, 16, 22, 20]
    dump["model.layers.1.mlp.shared_expert.down_proj"] = t(0, 1)  # experts alone are not the block's output then
    assert "1:moe" not in dict(sglang_dump.points(dump))


def test_the_option_takes_three_modes():
    assert parse_layer_diff(None) == "on-failure" and parse_layer_diff("always") == "always"
    with pytest.raises(ConfigError, match="--layer-diff takes one of always, on-failure, never, got 'sometimes'"):
        parse_layer_diff("sometimes")


# ---- the hf side, in-process: hooks see the compute fault ----------------------------------------------

def test_hooks_capture_every_block_in_order_and_see_a_compute_fault(tmp_path: Path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from harness.boot import cellrun
    from harness.config.cards import load_cards
    from harness.runtimes import hf_faults, hf_layers

    ckpt = cellrun.resolve_checkpoint(load_cards()["tiny-qwen3-moe"], default_options(tmp_path).python_for("hf"))
    tok = transformers.AutoTokenizer.from_pretrained(ckpt)
    model = transformers.AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()
    names, clean = hf_layers.capture(model, tok, ["The capital of France is"], "cpu")
    assert names == [p.replace("0:mlp", "0:moe") for p in POINTS]  # forward order; a sparse block is "moe"
    applied = hf_faults.apply_faults(model, "attn_output_scaled@1").applied
    assert applied == ("model.layers.1.self_attn output scaled by 1.05 in the forward pass (weights untouched)",)
    _, faulted = hf_layers.capture(model, tok, ["The capital of France is"], "cpu")
    assert torch.equal(faulted[:, :4], clean[:, :4])
    assert torch.allclose(faulted[:, 4], clean[:, 4] * 1.05) and not torch.allclose(faulted[:, 5:], clean[:, 5:])
    with pytest.raises(SystemExit, match="no attention block in decoder layer 7"):
        hf_faults.apply_faults(model, "attn_output_scaled@7")
    with pytest.raises(SystemExit, match="and per layer: attn_output_scaled@LAYER, mlp_output_scaled@LAYER"):
        hf_faults.apply_faults(model, "attn_output_scaled@x")
