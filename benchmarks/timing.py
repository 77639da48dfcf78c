"""A pytest plugin that timestamps where a `harness run` spends wall time; loaded only by the benchmark.

    harness run ... -p benchmarks.timing      (with BENCH_TIMING_DIR set and the repo on PYTHONPATH)

Every pytest process (the controller and each xdist worker) writes ``<pid>.jsonl`` into
$BENCH_TIMING_DIR when it ends. It implements the harness's hooks (harness/hookspecs.py), so it
sees what the process that does the work sees, and patches nothing:

- ``boot``: one interval per runtime boot, from ``pytest_harness_runtime_ready`` (it ends there and
  lasted ``runtime.boot_s``); a boot that never got ready lasts from ``..._booting`` to its stop;
- ``stop``: one per teardown, from ``pytest_harness_runtime_stopped`` (``seconds``);
- ``check``: one per check, from ``pytest_harness_check_result`` (``seconds``);
- ``request``: one per HTTP answer of a runtime's client (a ``response`` hook of its
  ``requests.Session``, requests' own extension point; ``response.elapsed``).

Times are ``time.time()`` so that intervals of different processes line up. Without the env var
the plugin does nothing.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

TIMING_ENV = "BENCH_TIMING_DIR"
PLUGIN_NAME = "bench-timing"


class TimingRecorder:
    """Collects the intervals of one pytest process and writes them when the process ends."""

    def __init__(self, folder: Path, role: str) -> None:
        self.folder = folder
        self.events: list[dict[str, Any]] = [{"kind": "process", "label": role, "t0": time.time(), "t1": None}]
        self.booting: dict[str, float] = {}  # cell id -> when its boot began, until it is ready or stopped

    def interval(self, kind: str, label: str, seconds: float, end: float | None = None) -> None:
        """An interval of ``seconds`` that ends at ``end`` (now by default)."""
        t1 = time.time() if end is None else end
        self.events.append({"kind": kind, "label": label, "t0": t1 - max(0.0, seconds), "t1": t1})

    @pytest.hookimpl(optionalhook=True)
    def pytest_harness_runtime_booting(self, cell: Any, attempt: int) -> None:
        if attempt == 1:
            self.booting[cell.id] = time.time()

    @pytest.hookimpl(optionalhook=True)
    def pytest_harness_runtime_ready(self, runtime: Any) -> None:
        self.booting.pop(runtime.cell.id, None)
        self.interval("boot", runtime.cell.id, float(runtime.boot_s))
        for session in _http_sessions(runtime.client):
            session.hooks.setdefault("response", []).append(self._response)

    @pytest.hookimpl(optionalhook=True)
    def pytest_harness_runtime_stopped(self, cell: Any, seconds: float) -> None:
        end = time.time()
        began = self.booting.pop(cell.id, None)
        if began is not None:  # it never got ready: booting until its stop began counts as boot
            self.events.append({"kind": "boot", "label": cell.id, "t0": began, "t1": max(began, end - seconds)})
        self.interval("stop", cell.id, seconds, end)

    @pytest.hookimpl(optionalhook=True)
    def pytest_harness_check_result(self, cell: Any, check: str, seconds: float) -> None:
        self.interval("check", f"{cell.id}-{check}", seconds)

    def _response(self, response: Any, *args: Any, **kwargs: Any) -> None:
        request = response.request
        self.interval("request", f"{request.method} {request.url}", response.elapsed.total_seconds())

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        for event in self.events:
            if event["kind"] == "process":
                event["t1"] = time.time()
        path = self.folder / f"{os.getpid()}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(e) + "\n" for e in self.events))


def _http_sessions(client: Any) -> list[Any]:
    """The ``requests.Session`` objects a runtime client sends through (none for other clients)."""
    session = getattr(client, "session", None)
    return [session] if session is not None and isinstance(getattr(session, "hooks", None), dict) else []


def pytest_configure(config: pytest.Config) -> None:
    folder = os.environ.get(TIMING_ENV)
    if not folder or config.pluginmanager.has_plugin(PLUGIN_NAME):
        return
    role = "worker" if hasattr(config, "workerinput") else "controller"
    config.pluginmanager.register(TimingRecorder(Path(folder), role), PLUGIN_NAME)
