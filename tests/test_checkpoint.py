from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.numerics.checkpoint import Checkpoint


def write_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    header, blobs, offset = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        raw = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def test_reads_f32_and_widens_bf16_exactly(tmp_path: Path):
    f32 = np.array([[1.5, -2.25], [3.0, 0.1]], dtype=np.float32)
    bf16_bits = (f32.view(np.uint32) >> 16).astype(np.uint16)
    write_safetensors(tmp_path / "model.safetensors", {"a": ("F32", f32), "b": ("BF16", bf16_bits)})
    ck = Checkpoint(tmp_path)
    assert ck.names() == ["a", "b"]
    assert np.array_equal(ck.read("a"), f32)
    assert np.array_equal(ck.read("b"), (bf16_bits.astype(np.uint32) << 16).view(np.float32))
    assert ck.read("a", rows=1).shape == (1, 2)


def test_no_safetensors_says_what_is_needed(tmp_path: Path):
    with pytest.raises(ConfigError, match="no \\*.safetensors file"):
        Checkpoint(tmp_path)
