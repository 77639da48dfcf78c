"""Secrets masked in the files of a run directory: logs (as bytes, any encoding), nested files, log tails."""
from __future__ import annotations

import json
import os
import sys
import time

import pytest

from harness.boot.lifecycle import LaunchSpec, ServerProcess, tail
from harness.errors import RuntimeStartError
from harness.redact import MASK, Redactor
from harness.redact_files import redact_file, redact_tree

HF = "hf_abcdefghijklmnopqrstuvwxyz0123"
KEY = "sk-service-key-424242"


def test_every_file_under_the_run_directory_is_masked_binary_safe(tmp_path):
    run = tmp_path / "run"
    (run / "logs" / "deep").mkdir(parents=True)
    log = run / "logs" / "hf-cpu-m-none.log"
    log.write_bytes(b"\xff\xfe latin-1 \xe9 bytes then " + HF.encode() + b"\nHF_TOKEN=" + HF.encode() + b"\nok\n")
    os.chmod(log, 0o640)
    (run / "logs" / "deep" / "child.log").write_text(f"key {KEY}\n--api-key sk-flag-9999999 --port 1\n")
    (run / "events.jsonl").write_text(f'{{"cell": "hf-cpu-m-none", "note": "{KEY}"}}\n')
    clean = run / "results.jsonl"
    clean.write_text('{"cell": "hf-cpu-m-none", "reference_key": "3fa9c0d2e4b61a7f"}\n')
    before = clean.stat()
    changed, failed = redact_tree(run, Redactor.from_sources({"HF_TOKEN": HF, "MY_SERVICE_KEY": KEY}))
    assert failed == [] and sorted(p.name for p in changed) == ["child.log", "events.jsonl", "hf-cpu-m-none.log"]
    for path in run.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert all(s.encode() not in data for s in (HF, KEY, "sk-flag-9999999")), path
    assert log.read_bytes() == b"\xff\xfe latin-1 \xe9 bytes then ***\nHF_TOKEN=***\nok\n"  # other bytes kept
    assert log.stat().st_mode & 0o777 == 0o640
    after = clean.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # nothing to mask: not rewritten
    assert sorted(p.name for p in run.rglob("*") if p.name.startswith(".")) == []  # no temporary file left


def test_symlinks_are_not_followed_and_missing_files_are_ignored(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text(f"token {HF}\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "link.txt").symlink_to(outside)
    (run / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    r = Redactor.from_sources({"HF_TOKEN": HF})
    assert redact_tree(run, r) == ([], [])
    assert outside.read_text() == f"token {HF}\n"
    assert redact_file(run / "absent.log", r) is False


def test_log_tails_are_masked_even_while_the_log_is_not(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HF)
    log = tmp_path / "cell.log"
    log.write_text(f"boot\nusing {HF}\nexport OPENAI_API_KEY=sk-live-123456\nTraceback: boom\n")
    text = tail(log)
    assert HF not in text and "sk-live-123456" not in text
    assert text == f"boot\nusing {MASK}\nexport OPENAI_API_KEY={MASK}\nTraceback: boom"


def _printer(tmp_path, code: str) -> LaunchSpec:
    """A runtime stand-in that prints its secret-looking environment (given only to it, not to the harness)."""
    script = "import os, sys, time; print('auth', os.environ['MY_SERVICE_KEY'], flush=True); " + code
    return LaunchSpec(cell_id="fake-cpu-m-none", argv=(sys.executable, "-c", script),
                      env={**os.environ, "MY_SERVICE_KEY": KEY}, ready_url="http://127.0.0.1:9/health",
                      log_path=tmp_path / "logs" / "fake-cpu-m-none.log", boot_timeout_s=20.0)


def test_a_stopped_runtimes_log_is_masked_with_the_secrets_of_its_own_environment(tmp_path):
    server = ServerProcess(_printer(tmp_path, "time.sleep(60)"))
    server.launch()
    log = server.spec.log_path
    deadline = time.monotonic() + 20
    while KEY.encode() not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert KEY.encode() in log.read_bytes()  # written in plain text while it runs...
    server.stop()
    assert KEY.encode() not in log.read_bytes() and f"auth {MASK}".encode() in log.read_bytes()  # ...masked once it stops


def test_a_boot_crash_masks_the_log_before_its_tail_is_attached(tmp_path):
    server = ServerProcess(_printer(tmp_path, "sys.exit(3)"))
    server.launch()
    with pytest.raises(RuntimeStartError) as info:
        server.wait_ready(lambda: False)
    assert KEY not in info.value.log_tail and f"auth {MASK}" in info.value.log_tail
    assert KEY.encode() not in server.spec.log_path.read_bytes()


def test_json_and_json_lines_stay_valid_and_only_changed_lines_are_rewritten(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    escaped = {"cell": "c", "log_tail": 'config: HF_TOKEN="x" then "quoted" and ' + HF, "n": 1}
    untouched = '{"cell": "d",  "odd spacing": true}\n'
    (run / "results.jsonl").write_text(json.dumps(escaped) + "\n" + untouched + "{torn line with " + HF + "\n")
    (run / "manifest.json").write_text(json.dumps({"argv": ["--hf-token", HF], "env": {"MY_SERVICE_KEY": KEY}}, indent=2))
    changed, _ = redact_tree(run, Redactor.from_sources({"HF_TOKEN": HF}))
    assert len(changed) == 2
    first, second, third = (run / "results.jsonl").read_text().splitlines(keepends=True)
    assert json.loads(first)["log_tail"].endswith(f"and {MASK}") and second == untouched  # unchanged line kept byte for byte
    assert third == "{torn line with ***\n"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest == {"argv": ["--hf-token", MASK], "env": {"MY_SERVICE_KEY": MASK}}
