"""End to end on the real hf runtime (tiny-llama, none and disk): the accuracy result carries the paired
test against the reference cell and the card's power plan (results.jsonl, the HTML report, the terminal),
mode_active passes with its evidence, and an offload made inert on purpose fails with its evidence."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.boot import cellrun
from harness.boot.lifecycle import processes_with_env
from harness.checks import CHECKS
from harness.checks.base import CheckContext
from harness.config.cards import load_cards
from harness.config.matrix import Cell
from harness.reference.store import FAULT_ENV, REFERENCE_DIR_ENV, default_options
from harness.reports.data import figure
from harness.results import read_results
from tests.htmlgrid import parse_report

pytestmark = pytest.mark.e2e
NONE, DISK = "hf-cpu-tiny-llama-none", "hf-cpu-tiny-llama-disk"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Iterator[tuple[subprocess.CompletedProcess[str], Path]]:
    root = tmp_path_factory.mktemp("paired")
    env = {**os.environ, REFERENCE_DIR_ENV: str(root / "reference")}
    env.pop(FAULT_ENV, None)
    cmd = [sys.executable, "-m", "harness.cli", "run", "--out", str(root / "run"), "--devices", "cpu",
           "--models", "tiny-llama", "--offload-modes", "none,disk"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(REFERENCE_DIR_ENV, str(root / "reference"))
        yield subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env), root / "run"


def records(out: Path) -> dict[tuple[str, str], dict]:
    return {(r["cell"], r["check"]): r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}


def test_the_accuracy_result_carries_the_paired_test_and_the_power_figure(run):
    done, out = run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    recs = records(out)
    ref, disk = recs[(NONE, "accuracy")]["metrics"], recs[(DISK, "accuracy")]["metrics"]
    assert (ref["reference_source"], disk["reference_source"]) == ("self", "cache")
    assert disk["reference_cell"] == NONE and disk["reference_correct"] == 12
    assert (disk["paired_lost"], disk["paired_gained"], disk["paired_p_drop"]) == (0, 0, 1.0)
    assert (disk["min_detectable_drop"], disk["prompts_needed"]) == (0.25, 23) and disk["power_at_prompts"] < 0.8
    assert disk["power_warning"].startswith("12 prompts cannot detect a 0.25 accuracy drop: that needs >= 23")
    assert recs[(DISK, "logprob_parity")]["metrics"]["reference_source"] == "cache"  # one reference for both checks
    assert "warning: tiny-llama accuracy: 12 prompts cannot detect a 0.25 accuracy drop" in done.stdout


class Warnings(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in = False

    def handle_starttag(self, tag, attrs):
        self._in = self._in or dict(attrs).get("data-warning") == "power"
        if self._in:
            self.found.append("")

    def handle_endtag(self, tag):
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.found[-1] += data


def test_the_html_report_shows_the_paired_test_the_power_figure_and_the_warning(run):
    _, out = run
    html = (out / "index.html").read_text()
    figures = parse_report(html).figures[f"{DISK}::accuracy"]
    assert figures["vs reference"].startswith("0 lost, 0 gained · exact McNemar p(drop) 1 (α 0.05")
    assert figures["reference answers"].startswith(f"12/12 right · {NONE}")
    assert figures["detectable drop"] == "0.25 needs ≥ 23 prompts for power 80%; power with 12: 15.8%"
    warnings = Warnings()
    warnings.feed(html)
    assert warnings.found == ["tiny-llama accuracy: " + records(out)[(DISK, "accuracy")]["metrics"]["power_warning"]]
    assert "> warning: tiny-llama accuracy: 12 prompts cannot detect a 0.25 accuracy drop" in (out / "summary.md").read_text()


def test_none_and_disk_cells_pass_mode_active_with_their_evidence(run):
    _, out = run
    recs = records(out)
    none, disk = recs[(NONE, "mode_active")], recs[(DISK, "mode_active")]
    assert none["status"] == disk["status"] == "pass", (none["reason"], disk["reason"])
    assert none["metrics"]["offloaded_bytes"] == 0 and none["metrics"]["runtime_dtypes"] == "float32"
    assert disk["metrics"]["offloaded_to_disk_bytes"] > 0 and disk["metrics"]["baseline_cell"] == NONE
    assert disk["metrics"]["resident_bytes"] + disk["metrics"]["offloaded_bytes"] == none["metrics"]["resident_bytes"]
    assert disk["details"]["evidence"]["device_map_targets"]["disk"] > 0
    page = parse_report((out / "index.html").read_text())
    assert page.results[(DISK, "mode_active")] == "pass"
    shown = page.figures[f"{DISK}::mode_active"]
    assert shown["asked"] == "disk · float32" and shown["computes in"] == "float32 · sdpa"
    assert shown["offloaded"] == "289 KiB (disk 289 KiB; 18 of 21 parameters)"
    assert shown["resident"] == f"192 KiB (no-offload cell {NONE}: 481 KiB)" and shown["process memory"].startswith("rss ")
    grid = {r.cell: figure(r) for r in read_results(out / "results.jsonl").records if r.check == "mode_active"}
    assert (grid[NONE], grid[DISK]) == ("0 B offloaded", "289 KiB offloaded")  # the figure in the grid


def test_an_offload_made_inert_on_purpose_fails_with_its_evidence(run):
    _, out = run
    cell, card = Cell("hf", "cpu", "tiny-llama", "disk"), load_cards()["tiny-llama"]
    options = default_options(out)  # this run's directory: its no-offload cell is the baseline
    with _fault("inert_offload"):
        rt = cellrun.boot(cell, card, options, log_name="inert-disk.log")
    try:
        ctx = CheckContext(cell=cell, card=card, checkpoint=rt.checkpoint, client=rt.client,
                           weight_layout=rt.weight_layout, options=options)
        result = CHECKS.get("mode_active").run(ctx)
        accuracy = CHECKS.get("accuracy").run(ctx)
    finally:
        cellrun.shutdown(rt)
    assert accuracy.status == "pass"  # right answers: only mode_active sees it
    assert result.status == "fail", result.reason
    assert result.reason.startswith("mode-inactive: offload: disk asked, but no weights are offloaded to disk "
                                    "(0 of 21 parameters; offloaded: cpu 0 B, disk 0 B); 481.2 KiB resident, "
                                    f"as much as the no-offload cell {NONE} (481.2 KiB)")
    assert result.details["evidence"]["asked_offload_targets"] == ["disk"]  # what it claims
    assert result.details["evidence"]["device_map_targets"] == {}          # what it did
    assert processes_with_env("HARNESS_OUT", str(out)) == []


@contextlib.contextmanager
def _fault(value: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(FAULT_ENV, value)
        yield
