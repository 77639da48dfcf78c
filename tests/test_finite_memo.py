"""Checkpoint tensors known finite are memoised by file (harness/numerics/finitememo.py), so equal bytes
skip the finiteness pass; a checkpoint tensor with a NaN is never remembered and always fails."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from harness.checks import CHECKS, CheckContext
from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.numerics.checkpoint import Checkpoint
from harness.numerics.finitememo import FiniteMemo
from tests.test_numerics_weight_parity import FakeSGLang, write_safetensors


def _ckpt(tmp_path: Path, tensors: dict[str, np.ndarray]) -> Path:
    write_safetensors(tmp_path / "model.safetensors", tensors)
    return tmp_path


def test_what_is_remembered_survives_the_process_and_not_a_changed_file(tmp_path: Path):
    d = _ckpt(tmp_path, {"a": np.ones((2, 2)), "b": np.zeros(3)})
    memo = FiniteMemo(Checkpoint(d).extent)
    assert not memo.known("a")
    memo.add("a")
    memo.save()
    again = FiniteMemo(Checkpoint(d).extent)  # another process: only the disk is shared
    assert again.known("a") and not again.known("b") and not again.known("not-a-tensor")
    f = d / "model.safetensors"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert not FiniteMemo(Checkpoint(d).extent).known("a")


def _parity(d: Path, state: dict[str, np.ndarray]):
    card = ModelCard.from_mapping({"name": "m", "architecture": "LlamaForCausalLM", "source": {"path": "p"}}, "m")
    ctx = CheckContext(cell=Cell("hf", "cpu", "m", "none", "float32"), card=card, checkpoint=d,
                       client=FakeSGLang(state), weight_layout="transformers")
    return CHECKS.get("weight_parity").run(ctx)


def test_a_nan_the_runtime_holds_too_fails_every_time_and_equal_finite_tensors_are_remembered(tmp_path: Path):
    good = np.arange(12, dtype=np.float32).reshape(3, 4)
    bad = good.copy()
    bad[2, 3] = np.nan
    names = {"model.norm.weight": good, "model.embed_tokens.weight": bad}
    d = _ckpt(tmp_path, names)
    for _ in range(2):  # the second run reads the memo the first one wrote
        r = _parity(d, {k: v.copy() for k, v in names.items()})
        assert r.status == "fail"
        failed = [t["name"] for t in r.details["worst"] if not t["ok"]]
        assert failed == ["model.embed_tokens.weight"], failed
    memo = FiniteMemo(Checkpoint(d).extent)
    assert memo.known("model.norm.weight") and not memo.known("model.embed_tokens.weight")
    changed = {k: v.copy() for k, v in names.items()}
    changed["model.norm.weight"][0, 0] += 1.0  # known finite, but the bytes differ: still compared by value
    r = _parity(d, changed)
    assert "model.norm.weight" in [t["name"] for t in r.details["worst"] if not t["ok"]]
