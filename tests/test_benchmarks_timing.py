"""The benchmark's timing plugin: intervals from the harness's hooks, nothing patched."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import requests

from benchmarks.timing import TimingRecorder
from harness.config.matrix import Cell

CELL = Cell("hf", "cpu", "tiny-llama", "none")


def _events(rec: TimingRecorder, kind: str) -> list[dict]:
    return [e for e in rec.events if e["kind"] == kind]


def test_boot_stop_and_check_intervals_last_what_the_hooks_say(tmp_path: Path) -> None:
    rec = TimingRecorder(tmp_path, "controller")
    client = SimpleNamespace(session=requests.Session())
    rec.pytest_harness_runtime_booting(cell=CELL, attempt=1)
    rec.pytest_harness_runtime_ready(runtime=SimpleNamespace(cell=CELL, boot_s=2.5, client=client))
    rec.pytest_harness_check_result(cell=CELL, check="accuracy", seconds=0.75)
    rec.pytest_harness_runtime_stopped(cell=CELL, seconds=0.25)
    [boot], [check], [stop] = _events(rec, "boot"), _events(rec, "check"), _events(rec, "stop")
    assert (boot["label"], round(boot["t1"] - boot["t0"], 6)) == (CELL.id, 2.5)
    assert (check["label"], round(check["t1"] - check["t0"], 6)) == (f"{CELL.id}-accuracy", 0.75)
    assert (stop["label"], round(stop["t1"] - stop["t0"], 6)) == (CELL.id, 0.25)
    assert rec._response in client.session.hooks["response"]  # requests' own hook, on the client's session only
    assert requests.Session().hooks["response"] == []


def test_a_boot_that_never_got_ready_counts_until_its_stop(tmp_path: Path) -> None:
    rec = TimingRecorder(tmp_path, "worker")
    rec.pytest_harness_runtime_booting(cell=CELL, attempt=1)
    rec.pytest_harness_runtime_booting(cell=CELL, attempt=2)  # a port retry is the same boot
    rec.pytest_harness_runtime_stopped(cell=CELL, seconds=0.0)
    [boot] = _events(rec, "boot")
    assert boot["t0"] <= boot["t1"] and len(_events(rec, "stop")) == 1 and rec.booting == {}


def test_a_runtime_answer_is_a_request_interval_and_the_file_is_written_at_the_end(tmp_path: Path) -> None:
    rec = TimingRecorder(tmp_path / "timing", "worker")
    answer = SimpleNamespace(request=SimpleNamespace(method="POST", url="http://127.0.0.1:1/generate"),
                             elapsed=dt.timedelta(seconds=1.5))
    rec._response(answer)
    rec.pytest_unconfigure(config=None)
    [f] = (tmp_path / "timing").glob("*.jsonl")
    events = [json.loads(line) for line in f.read_text().splitlines()]
    assert [e["kind"] for e in events] == ["process", "request"] and events[0]["t1"] is not None
    assert events[1]["label"] == "POST http://127.0.0.1:1/generate" and round(events[1]["t1"] - events[1]["t0"], 6) == 1.5
