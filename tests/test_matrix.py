from __future__ import annotations

import pytest

from harness.config.matrix import Cell, MatrixSpec, expand, parse_list
from harness.errors import ConfigError


def spec(**kw):
    base = {"runtimes": ["hf"], "devices": ["cpu", "npu"], "models": ["tiny-llama"], "offload_modes": ["none", "cpu", "disk"],
                "known_runtimes": ["hf", "sglang"], "known_models": ["tiny-llama", "tiny-qwen2-moe"],
                "known_offload_modes": ["none", "cpu", "disk", "meta"]}
    base.update(kw)
    return MatrixSpec.build(**base)


def test_cell_id_reads_like_the_matrix():
    assert Cell("hf", "cpu", "tiny-llama", "disk").id == "hf-cpu-tiny-llama-disk"
    assert Cell("sglang", "npu", "glm4-moe-lite", "sharded_gpu", "bfloat16", 2).id == "sglang-npu-glm4-moe-lite-sharded_gpu-bf16-tp2"


def test_expand_is_the_product_in_axis_order():
    cells = [p.cell.id for p in expand(spec(), lambda c: None)]
    assert cells == [
        "hf-cpu-tiny-llama-none", "hf-cpu-tiny-llama-cpu", "hf-cpu-tiny-llama-disk",
        "hf-npu-tiny-llama-none", "hf-npu-tiny-llama-cpu", "hf-npu-tiny-llama-disk",
    ]


def test_expand_keeps_na_reasons_per_cell():
    planned = expand(spec(), lambda c: "pointless" if c.device == "cpu" and c.offload == "cpu" else None)
    na = {p.cell.id: p.na_reason for p in planned if p.na_reason}
    assert na == {"hf-cpu-tiny-llama-cpu": "pointless"}


@pytest.mark.parametrize("field, value, option", [
    ("runtimes", ["vlm"], "--runtimes"),
    ("devices", ["tpu"], "--devices"),
    ("models", ["llama-7b"], "--models"),
    ("offload_modes", ["gpu"], "--offload-modes"),
    ("dtypes", ["int4"], "--dtypes"),
])
def test_unknown_names_list_the_known_ones(field, value, option):
    with pytest.raises(ConfigError) as err:
        spec(**{field: value})
    msg = str(err.value)
    assert repr(value[0]) in msg and option in msg and "known:" in msg


def test_duplicates_are_dropped_and_tp_validated():
    assert spec(devices=["cpu", "cpu"]).devices == ("cpu",)
    with pytest.raises(ConfigError, match="tp must be a positive integer"):
        spec(tps=[0])


def test_parse_list():
    assert parse_list("hf, sglang", "--runtimes") == ("hf", "sglang")
    with pytest.raises(ConfigError, match="empty item"):
        parse_list("hf,,sglang", "--runtimes")
