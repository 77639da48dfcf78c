"""Which baseline a runtime version is checked against, and portability.json written by concurrent tests."""
from __future__ import annotations

import json
import multiprocessing
import sys
from pathlib import Path

import pytest

from harness.portability.locate import RuntimeNotInstalled
from harness.portability.runfile import (
    BASELINE_ENV,
    PROBE_ENV,
    SHIPPED_BASELINES,
    check_runtime,
    choose_baseline,
    record,
    version_key,
)
from harness.results import write_json_atomic
from tests.test_portability_wiring_cli import BAD_KEY, fake_runtime


def test_the_shipped_baseline_of_the_exact_version_wins() -> None:
    choice = choose_baseline("sglang", "0.5.23", {})
    assert choice.path == SHIPPED_BASELINES / "sglang-0.5.23.json"
    assert choice.note == "shipped baseline for sglang 0.5.23"


def test_a_newer_version_is_checked_against_the_newest_older_baseline(tmp_path: Path) -> None:
    for v in ("0.5.9", "0.5.23", "0.6.0"):
        (tmp_path / f"sglang-{v}.json").write_text("[]")
    (tmp_path / "sglang-notes.json").write_text("[]")
    choice = choose_baseline("sglang", "0.5.24.dev3", {BASELINE_ENV: str(tmp_path)})
    assert choice.path == tmp_path / "sglang-0.5.23.json"
    assert choice.write_to == tmp_path / "sglang-0.5.24.dev3.json"  # accepting writes this version's own file
    assert version_key("0.32.0+cpu") == (0, 32, 0)


def test_no_baseline_accepts_nothing_and_a_bad_setting_says_so(tmp_path: Path) -> None:
    choice = choose_baseline("sglang", "0.1.0", {})
    assert choice.path is None and "no baseline for sglang 0.1.0" in choice.note
    given = tmp_path / "mine.json"
    given.write_text("[]")
    assert choose_baseline("vllm", "9.9", {BASELINE_ENV: str(given)}).path == given
    with pytest.raises(ValueError, match="HARNESS_PORTABILITY_BASELINE=.* is neither a baseline file nor a directory"):
        choose_baseline("sglang", "0.5.23", {BASELINE_ENV: str(tmp_path / "missing")})


def _record(out: str, name: str) -> None:
    record(Path(out), {"runtime": name, "skipped": "test"})


def test_concurrent_writers_each_keep_their_runtime(tmp_path: Path) -> None:
    names = [f"rt{i}" for i in range(8)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_record, args=(str(tmp_path), n)) for n in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    data = json.loads((tmp_path / "portability.json").read_text())
    assert sorted(data["runtimes"]) == names
    assert not list(tmp_path.glob(".portability.json.*.tmp"))


def test_entries_attach_to_the_live_run_and_drop_another_runs(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "manifest.json", {"run_id": "r1", "status": "complete"})
    _record(str(tmp_path), "old")
    write_json_atomic(tmp_path / "manifest.json", {"run_id": "r2", "status": "running"})
    _record(str(tmp_path), "sglang")
    _record(str(tmp_path), "vllm")
    data = json.loads((tmp_path / "portability.json").read_text())
    assert data["run_id"] == "r2" and sorted(data["runtimes"]) == ["sglang", "vllm"]


def test_the_import_probe_is_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = fake_runtime(tmp_path / "site", "sglang", "0.0.1", bad=True)
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    static = check_runtime("sglang", sys.executable, {}, jobs=1)
    assert static["probe"] is None and [f["key"] for f in static["findings"]] == [BAD_KEY]
    probed = check_runtime("sglang", sys.executable, {PROBE_ENV: "1"}, jobs=1)
    assert probed["probe"]["modules"] >= 2
    assert any(f["rule"] == "import-probe" and f["path"].endswith("bad_model.py") for f in probed["findings"])


def test_a_python_without_the_runtime_raises_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(RuntimeNotInstalled, match="'vllm' is not importable"):
        check_runtime("vllm", sys.executable, {}, jobs=1)
