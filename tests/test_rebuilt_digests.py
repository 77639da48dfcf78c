"""Expected digests are rebuilt from the checkpoint once per host (harness/numerics/rebuiltdigests.py),
while the runtime hashes its copy; a runtime without checksums stops the rebuild."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from harness.checks import weight_digest
from harness.numerics import layout_build
from harness.numerics.digestmemo import DIGEST_DIR_ENV
from tests.test_numerics_weight_parity import write_safetensors
from tests.test_weight_digest_first import W2, SGLangServer, checkpoint, parity, sglang_state


@pytest.fixture
def ckpt(tmp_path: Path, monkeypatch) -> tuple[Path, dict[str, np.ndarray]]:
    monkeypatch.setenv(DIGEST_DIR_ENV, str(tmp_path / "memo"))
    tensors = checkpoint()
    write_safetensors(tmp_path / "model.safetensors", tensors)
    return tmp_path, tensors


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = layout_build.build

    def counting(members, read, shape_of):
        seen.append(members[0][1].runtime_name)
        return real(members, read, shape_of)

    monkeypatch.setattr(weight_digest, "build", counting)
    return seen


def test_a_second_cell_on_the_host_rebuilds_nothing_and_still_names_a_bad_expert(ckpt, builds):
    path, tensors = ckpt
    assert parity(path, SGLangServer(sglang_state(tensors), by_value=False)).status == "pass"
    first = len(builds)
    assert first > 3 and list((path / "memo").glob("rebuilt-*.json"))
    state = sglang_state(tensors)
    state[W2] = state[W2].copy()
    state[W2][100] *= 1.5
    r = parity(path, SGLangServer(state, by_value=False))
    assert len(builds) == first  # every expected digest came from the memo
    assert r.status == "fail" and W2 in r.reason
    f = path / "model.safetensors"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # the file changed: rebuilt
    assert parity(path, SGLangServer(sglang_state(tensors), by_value=False)).status == "pass"
    assert len(builds) == 2 * first


def test_a_runtime_without_checksums_stops_the_rebuild(ckpt, builds, monkeypatch):
    path, tensors = ckpt
    answered = threading.Event()
    real = weight_digest.build

    def slow_second(members, read, shape_of):
        if len(builds) == 1:  # the second build waits until the runtime has said it has no checksums
            answered.wait(5)
            time.sleep(0.2)
        return real(members, read, shape_of)

    monkeypatch.setattr(weight_digest, "build", slow_second)

    class NoChecksums(SGLangServer):
        def weight_digests(self):
            while not builds:
                time.sleep(0.001)
            answered.set()
            return None

    r = parity(path, NoChecksums(sglang_state(tensors), by_value=True))
    assert r.status == "pass" and r.metrics["coverage_by_value"] == 1.0  # compared by value instead
    groups = len(layout_build.members_by_runtime(weight_digest.Layout.load("sglang"), list(tensors), "Qwen3MoeForCausalLM"))
    assert groups >= 8 and 1 <= len(builds) <= 2  # stopped at the next tensor: the rest were never built
