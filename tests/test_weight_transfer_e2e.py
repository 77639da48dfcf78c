"""Weight parity through shared memory on the real hf runtime: used, cleaned up (also when the runtime
is killed mid-check), and giving the same results as the socket path on the tiny zoo."""
from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.boot import cellrun, xferdir
from harness.checks import CHECKS, CheckContext, CheckResult
from harness.config.cards import load_cards
from harness.config.matrix import Cell
from harness.errors import RuntimeRequestError
from harness.numerics.tensorwire import PATH
from harness.reference.store import FAULT_ENV, default_options

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(xferdir.fs_type(xferdir.SHM_ROOT) not in xferdir.TMPFS_TYPES,
                                                  reason="needs a tmpfs at /dev/shm")]


def my_xfer_dirs() -> list[Path]:
    return sorted(xferdir.SHM_ROOT.glob(f"{xferdir.PREFIX}{os.getpid()}-*"))


def run_weight_parity(rt: cellrun.RunningRuntime) -> CheckResult:
    ctx = CheckContext(cell=rt.cell, card=rt.card, checkpoint=rt.checkpoint, client=rt.client,
                       weight_layout=rt.weight_layout)
    return CHECKS.get("weight_parity").run(ctx)


@pytest.fixture
def booted(tmp_path, monkeypatch) -> Iterator[cellrun.RunningRuntime]:
    monkeypatch.delenv(xferdir.MODE_ENV, raising=False)
    monkeypatch.delenv(FAULT_ENV, raising=False)
    card = load_cards()["tiny-qwen3-moe"]
    rt = cellrun.boot(Cell("hf", "cpu", card.name, "none"), card, default_options(tmp_path))
    yield rt
    cellrun.shutdown(rt)


def test_tensors_come_through_shared_memory_and_nothing_is_left(booted):
    rt = booted
    assert rt.xfer_dir is not None and rt.xfer_dir.is_dir()
    r = run_weight_parity(rt)
    assert r.status == "pass", r.reason
    assert r.details["io"]["transfer_format"] == "shared-memory" and r.metrics["coverage"] == 1.0
    assert list(rt.xfer_dir.iterdir()) == []  # the region file went as soon as the runtime held it
    cellrun.shutdown(rt)
    assert not rt.xfer_dir.exists() and my_xfer_dirs() == []


@pytest.mark.parametrize("kill_at", [1, 3], ids=["first-request", "third-request"])
def test_a_runtime_killed_mid_check_leaves_no_file(booted, monkeypatch, kill_at):
    rt = booted
    fetcher = rt.client.fetcher  # type: ignore[attr-defined]
    post, asked = fetcher._post_json, []

    def killing_post(path, payload, accept="application/json"):
        if path == PATH:
            asked.append(payload["name"])
            if len(asked) == kill_at:  # the region was offered (and, the first time, still has its file)
                os.kill(rt.server.pid, signal.SIGKILL)
                rt.server.proc.wait(timeout=30)
        return post(path, payload, accept)

    monkeypatch.setattr(fetcher, "_post_json", killing_post)
    with pytest.raises(RuntimeRequestError):
        run_weight_parity(rt)
    assert len(asked) >= kill_at and list(rt.xfer_dir.iterdir()) == []
    cellrun.shutdown(rt)
    assert not rt.xfer_dir.exists() and my_xfer_dirs() == []


def comparable(r: CheckResult) -> tuple:
    """Everything a result says about the weights (not how they travelled or how long it took)."""
    return r.status, r.reason, r.metrics, r.details["worst"], r.details["not_verified"], r.details["unavailable"]


@pytest.mark.parametrize(("model", "dtype", "fault"), [
    ("tiny-llama", "float32", ""), ("tiny-llama", "bfloat16", "attn_scaled"),
    ("tiny-qwen3-moe", "float32", "moe_expert_transposed"), ("tiny-qwen3-moe", "bfloat16", ""),
])
def test_shared_memory_and_socket_give_the_same_results(tmp_path, monkeypatch, model, dtype, fault):
    card, results = load_cards()[model], {}
    for mode in ("shm", "socket"):
        monkeypatch.setenv(xferdir.MODE_ENV, mode)
        monkeypatch.setenv(FAULT_ENV, fault) if fault else monkeypatch.delenv(FAULT_ENV, raising=False)
        rt = cellrun.boot(Cell("hf", "cpu", model, "none", dtype), card, default_options(tmp_path / mode))
        try:
            assert (rt.xfer_dir is not None) is (mode == "shm")
            results[mode] = run_weight_parity(rt)
        finally:
            cellrun.shutdown(rt)
    assert results["shm"].details["io"]["transfer_format"] == "shared-memory"
    assert results["socket"].details["io"]["transfer_format"] == "binary"
    assert comparable(results["shm"]) == comparable(results["socket"])
    assert (results["shm"].status == "fail") is bool(fault)
