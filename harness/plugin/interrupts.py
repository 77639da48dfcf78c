"""Ctrl-C stops a run at any moment, and the run directory still ends up complete and true.

Two gaps this closes:

- A process started in the background by a non-interactive shell (``harness run &`` in a
  script or a CI step) inherits SIGINT *ignored*; Python then installs no KeyboardInterrupt
  handler and Ctrl-C is swallowed by the harness and by every child it starts (the tiny-model
  builder, runtimes). ``honour_sigint`` gives SIGINT back its Python meaning.
- A Ctrl-C during the end of the session (cells torn down, manifest closed, report rendered,
  strays reaped) would abort that work half-way: pytest does not catch a KeyboardInterrupt
  raised by a ``pytest_sessionfinish`` hook, so the manifest said ``complete``, the report was
  missing and ``pytest_unconfigure`` (which stops what is left) never ran. ``InterruptGuard``
  defers SIGINT over that stretch; when one came it marks the manifest ``interrupted``, renders
  the report again and makes the session's exit status INTERRUPTED. A second Ctrl-C raises at
  once, for anyone who really wants out.
"""
from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from harness.results import write_json_atomic

FINISHING = ("\nharness: Ctrl-C: finishing the run directory (manifest, report, stopping runtimes); "
             "press Ctrl-C again to quit at once")


def honour_sigint() -> bool:
    """Make SIGINT raise KeyboardInterrupt in this process even if it was inherited ignored or
    blocked; children started afterwards get the default action back. True when it changed."""
    if threading.current_thread() is not threading.main_thread():
        return False
    changed = False
    if signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        changed = True
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        changed = True
    return changed


class DeferredSigint:
    """While active, the first SIGINT is only noted; a second one raises KeyboardInterrupt.

    >>> d = DeferredSigint(); d.start(); signal.raise_signal(signal.SIGINT); d.stop(); d.count
    1
    """

    def __init__(self, notice: str | None = None) -> None:
        self.notice = notice
        self.count = 0
        self._previous: Any = None
        self._active = False

    def start(self) -> None:
        """Install the deferring handler (main thread only; elsewhere signals cannot be handled)."""
        if self._active or threading.current_thread() is not threading.main_thread():
            return
        self._previous = signal.signal(signal.SIGINT, self._note)
        self._active = True

    def stop(self) -> None:
        """Put back the handler that was there before ``start``."""
        if self._active:
            signal.signal(signal.SIGINT, self._previous)
            self._active = False

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
        if self.notice:
            print(self.notice, file=sys.stderr, flush=True)


@contextlib.contextmanager
def sigint_after() -> Iterator[None]:
    """Run a short step that must not stop half-way (a run directory without its manifest); a
    Ctrl-C that came meanwhile is raised when it ends."""
    sigint = DeferredSigint()
    sigint.start()
    try:
        yield
    finally:
        sigint.stop()
    if sigint.count:
        raise KeyboardInterrupt


class InterruptGuard:
    """Plugin: SIGINT deferred from session finish to unconfigure; an interrupt there still counts."""

    def __init__(self, recorder_name: str, sections: Any = None) -> None:
        self.recorder_name = recorder_name  # the ResultRecorder plugin: its run directory, if it began one
        self.sections = sections  # the report's extra sections (harness/reports/sections.py), drawn again too
        self.sigint = DeferredSigint(FINISHING)
        self._settled = 0
        self._session: pytest.Session | None = None

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        self._session = session
        self.sigint.start()
        try:
            return (yield)
        finally:
            self._settle()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_unconfigure(self, config: pytest.Config) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:
            self.sigint.stop()
            self._settle()

    def _settle(self) -> None:
        """A SIGINT came since the last look: the run counts as interrupted, on disk and in the exit code."""
        if self.sigint.count == self._settled:
            return
        self._settled = self.sigint.count
        if self._session is None:
            return
        self._session.exitstatus = pytest.ExitCode.INTERRUPTED
        recorder = self._session.config.pluginmanager.get_plugin(self.recorder_name)
        if recorder is not None and recorder.started_writing and mark_interrupted(recorder.out_dir / "manifest.json"):
            rerender(recorder.out_dir, self.sections)


def mark_interrupted(manifest: Path) -> bool:
    """Rewrite a run's manifest with ``status: interrupted``; False when there is no manifest yet."""
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    data.update(status="interrupted", exitstatus=int(pytest.ExitCode.INTERRUPTED))
    write_json_atomic(manifest, data)
    return True


def rerender(out_dir: Path, sections: Any = None) -> None:
    """Render the report again so it shows the interrupted status; say how to do it by hand if that fails."""
    try:
        from harness.reports.builder import build_outcome

        build_outcome(out_dir, sections)
    except Exception as exc:  # the results are on disk; rendering is repeatable
        print(f"harness: rendering the report after Ctrl-C failed ({type(exc).__name__}: {exc}); "
              f"retry with `harness report {out_dir}`", file=sys.stderr)
