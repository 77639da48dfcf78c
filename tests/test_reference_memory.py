"""The reference's memory preflight: what it estimates, and that a reference that will not fit is refused unbooted."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from harness.boot import cellrun
from harness.checks import CHECKS
from harness.checks.base import CheckContext
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.config.refspec import ReferenceSpec
from harness.errors import ConfigError
from harness.reference.memory import (
    RUNTIME_OVERHEAD,
    TEST_MEMORY_ENV,
    ReferenceRefused,
    estimate,
    parse_bytes,
    preflight,
    size,
)
from harness.reference.store import ReferenceStore, default_options, reference_dir

MIB = 2**20


def write_safetensors(directory: Path, tensors: dict[str, tuple[str, tuple[int, ...]]]) -> Path:
    """A real safetensors file of zeros: {name: (dtype, shape)}."""
    itemsize = {"BF16": 2, "F32": 4, "I64": 8}
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = itemsize[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.safetensors").write_bytes(struct.pack("<Q", len(blob)) + blob + bytes(offset))
    (directory / "config.json").write_text("{}")
    return directory


@pytest.fixture
def bf16_ckpt(tmp_path: Path) -> Path:
    """2 MiB of bf16 weights (1M elements) and an int64 buffer of 8 KiB that never changes dtype."""
    return write_safetensors(tmp_path / "ckpt", {"w": ("BF16", (1024, 1024)), "pos": ("I64", (1024,))})


def test_a_bf16_checkpoint_doubles_in_a_float32_reference(bf16_ckpt):
    fp32 = estimate(bf16_ckpt, ReferenceSpec())
    assert fp32.checkpoint_dtype == "bfloat16" and fp32.pool == "host memory"
    assert fp32.weights_bytes == 4 * MIB + 8192
    assert fp32.needed_bytes == int(fp32.weights_bytes * 1.1) + RUNTIME_OVERHEAD
    assert estimate(bf16_ckpt, ReferenceSpec(dtype="bfloat16")).weights_bytes == 2 * MIB + 8192


def test_the_pool_is_where_the_weights_live(bf16_ckpt):
    assert estimate(bf16_ckpt, ReferenceSpec(device="npu")).pool == "npu card memory"
    assert estimate(bf16_ckpt, ReferenceSpec(device="npu", offload="cpu")).pool == "host memory"
    assert estimate(bf16_ckpt, ReferenceSpec(device="npu"), on_host=True).pool == "host memory"  # simulated
    disk = estimate(bf16_ckpt, ReferenceSpec(offload="disk"))
    assert (disk.weights_bytes, disk.needed_bytes) == (0, RUNTIME_OVERHEAD)


def test_the_test_only_override_takes_bytes_or_units():
    assert (parse_bytes("1048576"), parse_bytes("64M"), parse_bytes("1.5G"), parse_bytes("2GiB")) == \
        (MIB, 64 * MIB, 3 * 2**29, 2 * 2**30)
    with pytest.raises(ConfigError, match=f"{TEST_MEMORY_ENV} takes bytes or a number with K/M/G/T .* got 'lots'"):
        parse_bytes("lots")


def test_a_reference_that_does_not_fit_is_refused_with_the_need_the_memory_and_the_alternatives(bf16_ckpt):
    cell = Cell("hf", "cpu", "big", "none")
    with pytest.raises(ReferenceRefused) as err:
        preflight(cell, ReferenceSpec(), bf16_ckpt, "python", environ={TEST_MEMORY_ENV: "1M"})
    msg = str(err.value)
    need = estimate(bf16_ckpt, ReferenceSpec()).needed_bytes
    assert err.value.kind == "preflight" and err.value.cell_id == "hf-cpu-big-none"
    assert f"reference hf-cpu-big-none (hf-cpu float32) will not fit: it needs ~{size(need)} of host memory" in msg
    assert f"1.0 MiB available ({TEST_MEMORY_ENV}=1M, test-only)" in msg
    assert "checkpoint in bfloat16 -> 4.0 MiB in float32" in msg
    assert "a smaller dtype (matrix file `reference: {dtype: bfloat16}`" in msg
    assert "another device (`reference: {device: cuda|npu|rocm|xpu}`)" in msg
    assert "`harness reference export big --out big.golden.json.gz` there, then `harness reference import" in msg
    fits = preflight(cell, ReferenceSpec(), bf16_ckpt, "python", environ={TEST_MEMORY_ENV: "64G"})
    assert fits.needed_bytes == need


def test_the_check_refuses_before_booting_and_caches_nothing(tmp_path, bf16_ckpt, monkeypatch):
    monkeypatch.setenv("HARNESS_REFERENCE_DIR", str(tmp_path / "ref"))
    monkeypatch.setenv(TEST_MEMORY_ENV, "1M")
    booted: list[Cell] = []

    class Booted(Exception):
        pass

    def fake_boot(cell, *args, **kwargs):
        booted.append(cell)
        raise Booted

    monkeypatch.setattr(cellrun, "boot", fake_boot)
    card = ModelCard.from_mapping({"name": "big", "architecture": "LlamaForCausalLM", "source": {"path": str(bf16_ckpt)}},
                                  "c")

    class Client:
        def generate(self, prompts, *, max_new_tokens, top_logprobs=0):
            return []

        def server_info(self):
            return {}

    options = default_options(tmp_path / "out")
    ctx = CheckContext(Cell("hf", "cpu", "big", "disk"), card, bf16_ckpt, Client(), "transformers", options)
    with pytest.raises(ReferenceRefused, match="reference hf-cpu-big-none .* will not fit"):
        CHECKS.get("logprob_parity").run(ctx)
    assert booted == []
    assert list(ReferenceStore(reference_dir()).root.glob("*.json")) == []
    events = [json.loads(line) for line in (options.out_dir / "events.jsonl").read_text().splitlines()]
    assert [(e["event"], e["cell"]) for e in events] == [("reference-refused", "hf-cpu-big-none")]
    monkeypatch.setenv(TEST_MEMORY_ENV, "64G")  # enough: the same check now goes on to boot the reference
    with pytest.raises(Booted):
        CHECKS.get("logprob_parity").run(ctx)
    assert booted == [Cell("hf", "cpu", "big", "none")]
