"""The first divergent layer on real SGLang (CPU, `tox -e sglang`): its running server gives no per-layer
states, so the failing cell is booted a second time with its debug tensor dump, and the layer whose
weights were scaled on the way in is named against the hf reference's stored states."""
from __future__ import annotations

import pytest

from tests.test_e2e_runtimes import RUNTIME, sglang_checks

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(RUNTIME != "sglang", reason="needs HARNESS_E2E_RUNTIME=sglang")]


def test_sglang_names_the_layer_whose_attention_output_is_scaled(tmp_path, monkeypatch):
    from harness.boot import cellrun
    from harness.checks import CHECKS, CheckContext
    from harness.config.cards import load_cards
    from harness.config.matrix import Cell
    from harness.reference.store import REFERENCE_DIR_ENV, default_options

    monkeypatch.setenv(REFERENCE_DIR_ENV, str(tmp_path / "reference"))
    card = load_cards()["tiny-llama"]
    options = default_options(tmp_path / "hf")
    rt = cellrun.boot(Cell("hf", "cpu", card.name, "none"), card, options)  # the clean reference stores its states
    try:
        ctx = CheckContext(cell=rt.cell, card=card, checkpoint=rt.checkpoint, client=rt.client,
                           weight_layout=rt.weight_layout, options=options)
        assert CHECKS.get("logprob_parity").run(ctx).metrics["reference_source"] == "self"
        good = rt.checkpoint
    finally:
        cellrun.shutdown(rt)

    def scale_o_proj(tensors):
        tensors["model.layers.1.self_attn.o_proj.weight"] = tensors["model.layers.1.self_attn.o_proj.weight"] * 1.05

    r = sglang_checks(tmp_path, card, good, scale_o_proj, ("logprob_parity",))["logprob_parity"]
    assert r.status == "fail", r.reason
    m = r.metrics
    assert (m["layer_index"], m["layer_module"], m["layer_cell_source"]) == (1, "attention", "second boot, dumping")
    assert m["layer_reference_source"] == "cache" and m["layer_rel_error"] == pytest.approx(0.05, rel=0.05)
    before = r.details["layers"][:[row["layer"] for row in r.details["layers"]].index(1)]
    assert before and all(row["within_tolerance"] for row in before)  # SGLang's float32 kernels stay within 1e-3
    assert "first divergent layer: layer 1 attention output" in r.reason
