"""Boot ahead: the next cell's runtime boots while the current one is checked, each cell still once.

The end-to-end cases drive the real hf runtime through `harness run` and read the run's
events.jsonl (one line per boot, stop, card acquire and release, in time order).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.boot.bootahead import BootAhead, next_cells, run_order
from harness.boot.leases import overlaps
from harness.boot.lifecycle import processes_with_env
from harness.config.matrix import Cell
from harness.plugin.scheduling import longest_first
from tests.test_e2e_hf import harness_run, records

MODELS = "tiny-llama,tiny-qwen3-moe"


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def timeline(out: Path, kinds: tuple[str, ...] = ("boot", "stopped")) -> list[tuple[str, str]]:
    return [(e["event"], e["cell"]) for e in events(out) if e["event"] in kinds]


def test_next_cells_follow_the_run_order():
    order = run_order([Cell("hf", "cpu", "a", "none"), None, Cell("hf", "cpu", "a", "none"), Cell("hf", "cpu", "b", "none")])
    assert order == ["hf-cpu-a-none", "hf-cpu-b-none"]
    assert next_cells(order, "hf-cpu-a-none", 1) == ["hf-cpu-b-none"]
    assert next_cells(order, "hf-cpu-b-none", 1) == []
    assert next_cells(order, "unknown", 1) == []
    assert next_cells(["a", "b", "c", "d"], "a", 2) == ["b", "c"]


def test_depth_zero_or_full_launches_nothing(tmp_path):
    ahead = BootAhead(0)
    assert ahead.start(Cell("hf", "cpu", "tiny-llama", "none"), None, None, None) is False  # type: ignore[arg-type]
    assert ahead.pending == {} and ahead.close() == []


def test_longest_first_orders_known_cells_and_keeps_the_rest():
    assert longest_first(["a", "b", "c"], {}) == ["a", "b", "c"]
    assert longest_first(["x-none", "x-disk", "tests/test_other.py"], {"x-none": 4.0, "x-disk": 9.5}) == [
        "x-disk", "x-none", "tests/test_other.py"]


@pytest.mark.e2e
def test_next_cell_boots_while_the_current_one_is_checked(tmp_path):
    out = tmp_path / "run"
    done = harness_run(out, "--devices", "cpu", "--models", MODELS, "--offload-modes", "none,disk")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = timeline(out)
    boots = [c for e, c in line if e == "boot"]
    assert len(boots) == 4 and len(set(boots)) == 4, line  # every cell booted exactly once
    for first, second in zip(boots, boots[1:]):
        assert line.index(("boot", second)) < line.index(("stopped", first)), f"{second} waited for {first}: {line}"
    assert all(r["status"] == "pass" for r in records(out).values())
    assert "(ahead, while the current cell is checked)" in done.stdout
    assert not processes_with_env("HARNESS_OUT", str(out.resolve()))


@pytest.mark.e2e
def test_boot_ahead_zero_boots_each_cell_after_the_previous_stopped(tmp_path):
    out = tmp_path / "run"
    done = harness_run(out, "--devices", "cpu", "--models", "tiny-llama", "--offload-modes", "none,disk", "--boot-ahead", "0")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = timeline(out)
    assert [e for e, _ in line] == ["boot", "stopped", "boot", "stopped"], line
    assert line[0][1] == line[1][1] and line[2][1] == line[3][1] != line[0][1]


@pytest.mark.e2e
def test_an_early_stop_stops_the_runtime_booted_ahead(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "HARNESS_HF_CHAOS": "hf-cpu-tiny-llama-none=kill_on_generate"}
    done = harness_run(out, "--devices", "cpu", "--models", "tiny-llama", "--offload-modes", "none,disk", "--", "-x",
                       env=env)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    line = timeline(out)
    assert ("boot", "hf-cpu-tiny-llama-disk") in line and ("stopped", "hf-cpu-tiny-llama-disk") in line, line
    assert {r["cell"] for r in records(out).values()} == {"hf-cpu-tiny-llama-none"}
    assert not processes_with_env("HARNESS_OUT", str(out.resolve()))
    assert json.loads((out / "manifest.json").read_text())["ended"]


@pytest.mark.e2e
@pytest.mark.parametrize("cards, ahead", [(1, False), (2, True)])
def test_an_accelerator_boots_ahead_only_on_a_free_card(tmp_path, cards, ahead):
    out = tmp_path / "run"
    done = harness_run(out, "--devices", "npu", "--simulate-devices", f"npu:{cards}", "--models", "tiny-llama",
                       "--offload-modes", "none,disk", "--lease-dir", str(tmp_path / "leases"))
    # every check passes, but simulated results never count towards sign-off: NO-GO, exit 1
    assert done.returncode == 1 and "Verdict: NO-GO" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    assert {r["status"] for r in records(out).values()} == {"pass"}
    evs = events(out)
    assert overlaps(evs) == []
    line = timeline(out)
    first, second = [c for e, c in line if e == "boot"]
    assert (line.index(("boot", second)) < line.index(("stopped", first))) is ahead, line
    held = {e["cell"]: tuple(e["cards"]) for e in evs if e["event"] == "acquire"}
    assert len(set(held.values())) == (2 if ahead else 1), held
    assert all(r["status"] == "pass" for r in records(out).values())


def test_start_reports_pending_cells_and_close_stops_all_even_when_one_fails(monkeypatch):
    """Unit level, with cellrun's launch replaced by fake boots: what BootAhead holds and gives back."""
    from harness.boot import bootahead

    launched, abandoned = [], []
    no_card = {"hf-npu-c-none"}

    class FakeBoot:
        def __init__(self, cell_id: str) -> None:
            self.cell_id = cell_id

        def abandon(self) -> None:
            abandoned.append(self.cell_id)
            if self.cell_id == "hf-npu-a-none":
                raise OSError("stop failed")

    def launch(cell, card, options, inv, wait_for_cards=True, hook=None):
        assert wait_for_cards is False  # booting ahead never waits for a card
        if cell.id in no_card:
            return None
        launched.append(cell.id)
        return FakeBoot(cell.id)

    monkeypatch.setattr(bootahead.cellrun, "launch", launch)
    ahead = BootAhead(2)
    a, b, c = (Cell("hf", "npu", m, "none") for m in "abc")
    assert ahead.start(a, None, None, None) and ahead.start(a, None, None, None)  # already pending: still True
    assert launched == ["hf-npu-a-none"]
    assert ahead.start(c, None, None, None) is False  # no free card: the caller stops looking further
    assert ahead.start(b, None, None, None) and not ahead.start(Cell("hf", "npu", "d", "none"), None, None, None)
    with pytest.raises(OSError, match="stop failed"):
        ahead.close()
    assert sorted(abandoned) == ["hf-npu-a-none", "hf-npu-b-none"] and ahead.pending == {}
