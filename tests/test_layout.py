from __future__ import annotations

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.numerics.layout import Layout, LayoutRule, apply_ops


def test_transformers_layout_cuts_experts_out_of_fused_tensors():
    layout = Layout.load("transformers")
    E, I, H = 4, 3, 5
    gate = np.arange(E * I * H, dtype=np.float32).reshape(E, I, H)
    up = -gate
    fused = np.concatenate([gate, up], axis=1)  # [E, 2I, H]
    m_gate = layout.candidates("model.layers.1.mlp.experts.2.gate_proj.weight")[0]
    m_up = layout.candidates("model.layers.1.mlp.experts.2.up_proj.weight")[0]
    assert m_gate.runtime_name == "model.layers.1.mlp.experts.gate_up_proj"
    assert np.array_equal(apply_ops(fused, m_gate, (I, H)), gate[2])
    assert np.array_equal(apply_ops(fused, m_up, (I, H)), up[2])


def test_unmatched_names_map_to_themselves():
    cands = Layout.load("transformers").candidates("model.embed_tokens.weight")
    assert [c.runtime_name for c in cands] == ["model.embed_tokens.weight"]


def test_transpose_and_unpad_ops():
    rule = LayoutRule.from_mapping({"match": "^(?P<n>.+)$", "runtime": "{n}", "ops": [{"transpose": [0, 1]}, {"unpad": True}]}, "t")
    m = Layout("t", (rule,)).candidates("w")[0]
    padded = np.zeros((6, 4), dtype=np.float32)
    assert apply_ops(padded, m, (4, 3)).shape == (4, 3)


def test_bad_rules_are_reported_with_where():
    with pytest.raises(ConfigError, match="bad op"):
        LayoutRule.from_mapping({"match": "x", "runtime": "y", "ops": [{"rotate": 1}]}, "file.yaml rule 0")
    with pytest.raises(ConfigError, match="unknown layout 'nope'"):
        Layout.load("nope")
