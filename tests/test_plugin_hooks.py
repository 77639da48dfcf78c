"""The harness's hooks seen by a plugin of the run (a conftest.py here), with the real hf runtime.

Each cell boots, gets ready and stops once (the second one booted ahead), each check's result
comes through ``pytest_harness_check_result`` and matches its record, the progress lines come
from the same hooks, and a section the plugin returns is drawn, escaped, in index.html.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser

import pytest

from tests.conftest import SUITE

CELLS = ("hf-cpu-tiny-llama-none", "hf-cpu-tiny-llama-disk")
CHECKS = ("accuracy", "weight_parity")

CONFTEST = '''
import json
from pathlib import Path

from harness.reports.sections import Section

LOG = Path({log!r})


def _log(**event):
    with LOG.open("a") as f:
        f.write(json.dumps(event) + "\\n")


def pytest_harness_runtime_booting(cell, command, attempt):
    _log(hook="booting", cell=cell.id, attempt=attempt, command=command)


def pytest_harness_runtime_ready(runtime):
    _log(hook="ready", cell=runtime.cell.id, boot_s=runtime.boot_s)


def pytest_harness_runtime_stopped(cell, reason, seconds):
    _log(hook="stopped", cell=cell.id, reason=reason, seconds=seconds)


def pytest_harness_check_result(cell, check, result, seconds):
    _log(hook="check", cell=cell.id, check=check, status=result.status, seconds=seconds)


def pytest_harness_report_sections(data):
    return [Section.table("Lab bench", ("run", "rack"), [(data.manifest["run_id"], "r12")]),
            Section.note("Firmware", "<b>CANN</b> 8.0")]
'''


class SectionParser(HTMLParser):
    """The extra sections of a report: h2 titles, tables' cells and paragraphs' text."""

    def __init__(self) -> None:
        super().__init__()
        self.titles: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.texts: list[str] = []
        self.markup_in_text: list[str] = []  # tags met inside a section's text: none, it is escaped
        self._in: str | None = None
        self._table: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if self._in == "text":
            self.markup_in_text.append(tag)
        if tag == "h2" and a.get("class") == "extra-section":
            self._in = "title"
            self.titles.append("")
        elif tag == "table" and a.get("data-section"):
            self._table = str(a["data-section"])
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag == "td" and self._table:
            self._in = "cell"
            self.tables[self._table][-1].append("")
        elif tag == "p" and a.get("class") == "extra-text":
            self._in = "text"
            self.texts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        if tag in ("h2", "td", "p"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.titles[-1] += data
        elif self._in == "cell" and self._table:
            self.tables[self._table][-1][-1] += data
        elif self._in == "text":
            self.texts[-1] += data


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """One pytest run of the matrix suite with the hook-logging conftest.py (its own process)."""
    root = tmp_path_factory.mktemp("hooks")
    log, out = root / "hooks.jsonl", root / "run"
    (root / "conftest.py").write_text(CONFTEST.format(log=str(log)))
    (root / "test_matrix.py").write_text(SUITE.read_text())
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_matrix.py", "--devices", "cpu",
                           "--models", "tiny-llama", "--offload-modes", "none,disk", "-k", " or ".join(CHECKS),
                           "--harness-out", str(out), "--harness-progress"],
                          cwd=root, capture_output=True, text=True, timeout=900)
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return done, events, records, out


def test_a_plugin_sees_each_boot_once_and_every_check_result(run) -> None:
    done, events, records, _ = run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    count = Counter((e["hook"], e["cell"]) for e in events if e["hook"] != "check")
    assert count == {(hook, cell): 1 for hook in ("booting", "ready", "stopped") for cell in CELLS}
    assert {e["reason"] for e in events if e["hook"] == "stopped"} == {"done"}
    assert all(e["attempt"] == 1 and "hf_server.py" in e["command"] for e in events if e["hook"] == "booting")
    for cell in CELLS:  # per cell: booting, then ready, then its checks, then stopped
        mine = [e["hook"] for e in events if e["cell"] == cell]
        assert mine[:2] == ["booting", "ready"] and mine[-1] == "stopped" and set(mine[2:-1]) == {"check"}
    checks = {(e["cell"], e["check"]): e for e in events if e["hook"] == "check"}
    assert set(checks) == {(c, k) for c in CELLS for k in CHECKS}
    assert all(e["seconds"] > 0 for e in checks.values())
    assert {(r["cell"], r["check"]): r["status"] for r in records} == {k: e["status"] for k, e in checks.items()}


def test_progress_lines_come_from_the_runtime_hooks(run) -> None:
    done, *_ = run
    booting = [line for line in done.stdout.splitlines() if line.startswith("[harness] booting")]
    assert booting == [f"[harness] booting  {CELLS[0]}",
                       f"[harness] booting  {CELLS[1]} (ahead, while the current cell is checked)"]


def test_a_section_from_a_plugin_is_drawn_after_the_built_in_ones(run) -> None:
    _, _, _, out = run
    html = (out / "index.html").read_text()
    page = SectionParser()
    page.feed(html)
    assert page.titles == ["Lab bench", "Firmware"]
    run_id = json.loads((out / "manifest.json").read_text())["run_id"]
    assert page.tables["Lab bench"] == [[], [run_id, "r12"]]  # the header row has th only
    assert page.texts == ["<b>CANN</b> 8.0"] and page.markup_in_text == []  # text, never markup
    assert html.index('id="environment"') < html.index("Lab bench")
