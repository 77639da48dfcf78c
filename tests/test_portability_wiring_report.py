"""The report's portability section, read back out of the HTML (and summary.md) of a rendered run."""
from __future__ import annotations

import json
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.portability.runfile import check_runtime, record
from harness.reports.builder import ReportInputs, render_run
from harness.reports.merge import merge_runs
from harness.results import write_json_atomic
from tests.reportruns import TODAY, rec, write_run
from tests.test_portability_wiring_cli import fake_runtime

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>|**bold**|`tick`"


class PortabilityPage(HTMLParser):
    """Runtime rows (``tr[data-portability]``) and new-finding rows (``tr[data-finding]``) with their cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.runtimes: dict[str, dict[str, str]] = {}
        self.findings: list[dict[str, object]] = []
        self.notes: list[str] = []
        self.toc: list[str] = []
        self.elements: list[str] = []
        self._cells: list[str] | None = None
        self._note: list[str] | None = None
        self._in_portability = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append(tag)
        if tag == "section":
            self._in_portability = a.get("id") == "portability"
        if tag == "a" and a.get("href", "").startswith("#"):
            self.toc.append(a["href"])
        if "data-portability" in a:
            self.runtimes[a["data-portability"]] = a
        if "data-finding" in a:
            self.findings.append({**a, "cells": []})
            self._cells = self.findings[-1]["cells"]  # type: ignore[assignment]
        if tag == "td" and self._cells is not None:
            self._cells.append("")
        if tag == "p" and a.get("class") == "note" and self._in_portability:
            self._note = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._cells = None
        if tag == "p" and self._note is not None:
            self.notes.append("".join(self._note))
            self._note = None

    def handle_data(self, data: str) -> None:
        if self._cells:
            self._cells[-1] += data
        if self._note is not None:
            self._note.append(data)


def page(index: Path) -> PortabilityPage:
    p = PortabilityPage()
    p.feed(index.read_text())
    return p


def render(run: Path):
    return render_run(ReportInputs(run_dir=run, today=TODAY, environ={}))


def running_run(root: Path, run_id: str = "r1", cell: str = "sglang-cpu-tiny-llama-none") -> Path:
    return write_run(root, [rec(cell, "accuracy", "pass")], run_id=run_id, status="running")


def test_findings_of_a_real_check_are_listed_per_runtime_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    fake_runtime(site, "sglang", "0.5.23", bad=True)
    fake_runtime(site, "vllm", "0.32.0", bad=False)
    monkeypatch.setenv("PYTHONPATH", str(site))
    run = running_run(tmp_path / "latest")
    for runtime in ("sglang", "vllm"):
        record(run, check_runtime(runtime, sys.executable, {}, jobs=1))
    out = render(run)
    p = page(out.index)
    assert "#portability" in p.toc
    sglang, vllm = p.runtimes["sglang"], p.runtimes["vllm"]
    assert (sglang["data-version"], sglang["data-status"], sglang["data-new"], sglang["data-baselined"]) == ("0.5.23", "fail", "1", "0")
    assert (vllm["data-version"], vllm["data-status"], vllm["data-new"], vllm["data-suppressed"]) == ("0.32.0", "pass", "0", "0")
    [finding] = p.findings
    where, severity, rule, symbol, platforms, hint = finding["cells"]  # type: ignore[misc]
    assert finding["data-finding"] == where == "sglang/srt/models/bad_model.py:3"
    assert severity == finding["data-severity"] == "breaks" and finding["data-failing"] == "true"
    assert "sglang.srt.models.bad_model (model registry)" in hint  # how the platform reaches it
    assert (rule, symbol) == ("accel-import", "flashinfer.rmsnorm")
    assert platforms.startswith("rocm, npu, xpu, cpu") and "import it inside the function" in hint
    md = out.summary.read_text()
    assert "### Portability" in md and "| sglang | 0.5.23 | ▼ 1 | 0 | 0 |" in md
    assert "- sglang/srt/models/bad\\_model.py:3 — accel-import flashinfer.rmsnorm (breaks on rocm, npu, xpu, cpu" in md


def test_every_string_from_the_file_is_escaped(tmp_path: Path) -> None:
    run = running_run(tmp_path / "latest")
    finding = {"rule": "accel-import", "path": EVIL, "line": 7, "symbol": EVIL, "platforms": ["npu", EVIL],
               "hint": EVIL, "when": "import", "status": "new", "key": "k"}
    write_json_atomic(run / "portability.json", {"run_id": "r1", "runtimes": {
        "sglang": {"runtime": "sglang", "version": EVIL, "findings": [finding], "baseline": {"note": EVIL}},
        EVIL: {"runtime": EVIL, "skipped": EVIL}}})
    out = render(run)
    html = out.index.read_text()
    p = page(out.index)
    assert "script" not in p.elements and "img" not in p.elements
    assert p.findings[0]["data-finding"] == f"{EVIL}:7" and p.findings[0]["cells"][3] == EVIL  # type: ignore[index]
    assert p.runtimes[EVIL]["data-status"] == "skipped"
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6
    md = out.summary.read_text()
    assert "<script>" not in md and "<img" not in md and "\\|\\*\\*bold\\*\\*\\|" in md


def test_another_runs_file_is_not_shown_as_this_runs(tmp_path: Path) -> None:
    run = running_run(tmp_path / "latest", run_id="r2")
    write_json_atomic(run / "portability.json", {"run_id": "r1", "runtimes": {"sglang": {"runtime": "sglang", "findings": []}}})
    p = page(render(run).index)
    assert p.runtimes == {}
    assert p.notes == ["portability.json belongs to run r1, not to this run; it is not shown "
                       "(re-run the portability tests to check this run)"]


def test_no_file_no_section(tmp_path: Path) -> None:
    run = running_run(tmp_path / "latest")
    out = render(run)
    p = page(out.index)
    assert p.runtimes == {} and "#portability" not in p.toc
    assert "Portability" not in out.summary.read_text()


def test_a_cli_json_record_in_the_run_dir_is_shown(tmp_path: Path) -> None:
    from harness.cli import main

    src = fake_runtime(tmp_path / "src", "sglang", "0.0.1", bad=True)
    run = running_run(tmp_path / "latest")
    assert main(["portability", "--source", str(src), "--jobs", "1", "--json", str(run / "portability.json")]) == 1
    p = page(render(run).index)
    assert p.runtimes["sglang"]["data-new"] == "1" and len(p.findings) == 1


def test_merged_shards_keep_their_portability_results(tmp_path: Path) -> None:
    shards = [running_run(tmp_path / f"s{i}", run_id=f"s{i}", cell=f"sglang-cpu-tiny-llama-{o}") for i, o in ((1, "none"), (2, "cpu"))]
    write_json_atomic(shards[0] / "portability.json", {"run_id": "s1", "runtimes": {
        "sglang": {"runtime": "sglang", "version": "0.5.23", "findings": []}}})
    merged = merge_runs(tmp_path / "merged", shards)
    assert json.loads((merged / "portability.json").read_text())["run_id"] == json.loads((merged / "manifest.json").read_text())["run_id"]
    assert page(render(merged).index).runtimes["sglang"]["data-status"] == "pass"


def test_new_portability_findings_block_the_release(tmp_path: Path) -> None:
    run = running_run(tmp_path / "latest")

    def blockers(status: str, **ranked: object) -> list[str]:
        finding = {"rule": "accel-import", "path": "sglang/srt/models/x.py", "line": 3, "symbol": "sgl_kernel.f",
                   "platforms": ["npu"], "hint": "guard it", "when": "import", "status": status, "key": "k", **ranked}
        write_json_atomic(run / "portability.json", {"run_id": "r1", "runtimes": {
            "sglang": {"runtime": "sglang", "version": "0.5.23", "findings": [finding]}}})
        out = render(run)
        return [b.kind for b in out.data.signoff.blockers] if out.verdict == "NO-GO" else []

    assert "portability" in blockers("new")  # a record without severities: every finding counts as *breaks*
    assert "portability" not in blockers("baselined")
    assert "portability" in blockers("new", severity="breaks", failing=True)
    assert "portability" not in blockers("new", severity="latent", failing=False)  # listed, not blocking
