"""An accelerator reference holds a card of its own (harness/plugin/refboot.py): leased like a cell's,
computed before a cell takes its cards, sized against that card's free memory."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.boot import devices, leases
from harness.boot.devices import DeviceInventory
from harness.config.matrix import Cell
from harness.config.options import HarnessOptions
from harness.reference.cards import reference_cards
from harness.reference.memory import ReferenceRefused, available
from tests.test_boot_ahead import events
from tests.test_e2e_hf import harness_run, records

REF = Cell("hf", "npu", "tiny-llama", "none", "float32", 1)


def options(tmp_path: Path, cards: int) -> HarnessOptions:
    return HarnessOptions(out_dir=tmp_path / "run", runtimes=("hf",), devices=("npu",), models=(), offload_modes=("none",),
                          dtypes=("float32",), tps=(1,), runtime_python={}, boot_timeout_s=None, workarounds=(),
                          simulate={"npu": cards})


def test_a_reference_takes_a_free_card_and_inside_a_check_never_waits_for_one(tmp_path: Path):
    opts = options(tmp_path, 2)
    opts.out_dir.mkdir()
    held = leases.acquire("npu", 1, 2, "hf-npu-tiny-llama-disk", lease_dir=opts.out_dir / ".leases")
    try:
        with reference_cards(REF, opts, wait=False) as cards:
            assert cards is not None and cards != held.cards  # the other card
            with pytest.raises(ReferenceRefused) as refused, reference_cards(REF, opts, wait=False):
                pass
    finally:
        held.release()
    msg = str(refused.value)
    assert "no free npu card" in msg and "harness reference export tiny-llama" in msg
    with reference_cards(Cell("hf", "cpu", "tiny-llama", "none"), opts, wait=False) as cpu:
        assert cpu is None  # the CPU is never leased


def test_the_preflight_counts_the_leased_cards_free_memory(monkeypatch):
    inv = DeviceInventory("npu", 4, tuple(f"Ascend910B{i}" for i in range(4)), memory_gb=(64.0, 64.0, 32.0, 64.0))
    monkeypatch.setattr(devices, "probe", lambda device, python: inv)
    monkeypatch.setattr(devices, "free_memory", lambda device, python, card: (5 * 2**30, "") if card == 3 else (None, "no"))
    have = available(REF, "npu card memory", "python", {}, cards=(3,))
    assert have is not None and have.bytes == 5 * 2**30 and "free memory of npu card 3" in have.how
    have = available(REF, "npu card memory", "python", {}, cards=(2,))  # free memory unreadable: that card's total
    assert have is not None and have.bytes == 32 * 2**30 and "card 2" in have.how and "could not be read" in have.how
    have = available(REF, "npu card memory", "python", {})  # no card leased yet: the largest card
    assert have is not None and have.bytes == 64 * 2**30 and "the largest" in have.how


@pytest.mark.e2e
def test_an_npu_reference_is_computed_on_its_own_card_before_any_cell_holds_one(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HARNESS_REFERENCE_DIR", str(tmp_path / "references"))
    matrix = tmp_path / "m.yaml"
    matrix.write_text("runtimes: [hf]\ndevices: [npu]\nmodels: [tiny-llama]\noffload_modes: [disk]\nreference: {device: npu}\n")
    out = tmp_path / "run"
    done = harness_run(out, "--matrix", str(matrix), "--simulate-devices", "npu:1", "--lease-dir", str(tmp_path / "leases"))
    assert "Verdict:" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    logprob = records(out)[("hf-npu-tiny-llama-disk", "logprob_parity")]
    assert logprob["status"] == "pass", logprob["reason"]
    assert logprob["metrics"]["reference_cell"] == "hf-npu-tiny-llama-none"
    evs = [(e["event"], e["cell"], e["cards"]) for e in events(out)]
    assert evs[:4] == [("acquire", "reference hf-npu-tiny-llama-none", [0]), ("reference-boot", "hf-npu-tiny-llama-none", [0]),
                       ("reference-stopped", "hf-npu-tiny-llama-none", [0]), ("release", "reference hf-npu-tiny-llama-none", [0])]
    assert ("acquire", "hf-npu-tiny-llama-disk", [0]) in evs[4:] and leases.overlaps(events(out)) == []
