"""harness.plugin.interrupts: SIGINT honoured when inherited ignored, deferred over short steps, manifest marked."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.plugin.interrupts import DeferredSigint, honour_sigint, mark_interrupted, sigint_after

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import os, signal, time
from harness.plugin.interrupts import honour_sigint
print("ignored" if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else "handled", flush=True)
print("changed" if honour_sigint() else "unchanged", flush=True)
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(2)
    print("swallowed")
except KeyboardInterrupt:
    print("interrupted")
"""


def _child(ignored: bool) -> list[str]:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=REPO, timeout=60,
                          preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignored else None)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_sigint_inherited_ignored_raises_keyboard_interrupt_after_honour_sigint():
    assert _child(ignored=True) == ["ignored", "changed", "interrupted"]


def test_honour_sigint_leaves_pythons_own_handler_alone():
    assert _child(ignored=False) == ["handled", "unchanged", "interrupted"]
    assert honour_sigint() is False and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_first_sigint_is_deferred_and_a_second_one_raises():
    sigint = DeferredSigint()
    sigint.start()
    try:
        signal.raise_signal(signal.SIGINT)
        assert sigint.count == 1
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        sigint.stop()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigint_after_finishes_the_step_then_raises():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_after():
            signal.raise_signal(signal.SIGINT)
            done.append("rest of the step")
    assert done == ["rest of the step"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigint_after_without_a_signal_raises_nothing():
    with sigint_after():
        pass


def test_mark_interrupted_keeps_the_rest_of_the_manifest(tmp_path):
    manifest = tmp_path / "manifest.json"
    assert mark_interrupted(manifest) is False and not manifest.exists()
    manifest.write_text(json.dumps({"run_id": "r1", "status": "complete", "exitstatus": 0}))
    assert mark_interrupted(manifest) is True
    assert json.loads(manifest.read_text()) == {"run_id": "r1", "status": "interrupted", "exitstatus": 2}
