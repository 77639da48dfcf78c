"""Matrix at scale on simulated NPUs: 16 cells (4 with tp=2) on 8 cards under xdist.

Each cell's runtime really runs (on the CPU) with ASCEND_RT_VISIBLE_DEVICES set from its lease.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.boot.leases import overlaps
from harness.boot.lifecycle import processes_with_env

pytestmark = pytest.mark.e2e
MATRIX = Path(__file__).with_name("data") / "simulated-npu.yaml"


@pytest.fixture(scope="module")
def simulated_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "run"
    cmd = [sys.executable, "-m", "harness.cli", "run", "--matrix", str(MATRIX), "--simulate-devices", "npu:8",
           "--out", str(out), "--lease-dir", str(out.parent / "leases"), "-n", "8"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=dict(os.environ))
    return done, out


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def test_sixteen_cells_all_green_and_marked_simulated(simulated_run):
    done, out = simulated_run
    # all green, but simulated results never count towards sign-off: the exit code is NO-GO's
    assert done.returncode == 1 and "simulated devices never count" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    recs = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    cells = {r["cell"] for r in recs}
    assert len(cells) == 16 and len([c for c in cells if c.endswith("-tp2")]) == 4
    assert all(r["simulated"] for r in recs if r["status"] == "pass")
    assert Counter(r["status"] for r in recs)["pass"] == len([r for r in recs if r["status"] not in ("na", "skipped")])


def test_no_card_held_by_two_cells_and_every_lease_released(simulated_run):
    _, out = simulated_run
    ev = events(out)
    assert overlaps(ev) == []
    acquired = Counter(e["cell"] for e in ev if e["event"] == "acquire")
    released = Counter(e["cell"] for e in ev if e["event"] == "release")
    assert acquired == released and len(acquired) == 16
    assert all(len(e["cards"]) == (2 if e["cell"].endswith("-tp2") else 1) for e in ev if e["event"] == "acquire")


def test_each_cell_booted_exactly_once_with_its_cards_visible(simulated_run):
    _, out = simulated_run
    ev = events(out)
    boots = Counter(e["cell"] for e in ev if e["event"] == "boot")
    assert set(boots.values()) == {1} and len(boots) == 16
    for e in (e for e in ev if e["event"] == "boot"):
        log = (out / "logs" / f"{e['cell']}.log").read_text()
        seen = re.findall(r"'ASCEND_RT_VISIBLE_DEVICES': '([\d,]+)'", log)
        assert seen == [",".join(map(str, e["cards"]))], (e["cell"], seen)


def test_progress_lines_and_no_process_left(simulated_run):
    done, out = simulated_run
    assert len(re.findall(r"\[harness\]\s+\d+/16 done", done.stdout)) == 16
    assert processes_with_env("HARNESS_OUT", str(out)) == []
