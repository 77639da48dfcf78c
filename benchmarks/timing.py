"""A pytest plugin that timestamps where a `harness run` spends wall time; loaded only by the benchmark.

    harness run ... -p benchmarks.timing      (with BENCH_TIMING_DIR set and the repo on PYTHONPATH)

Every pytest process (the controller and each xdist worker) writes ``<pid>.jsonl`` into
$BENCH_TIMING_DIR when it ends: one interval per runtime boot (``ServerProcess.launch`` to the
end of ``wait_ready``), per teardown (``ServerProcess.stop``), per HTTP request
(``requests.Session.send``, which every runtime client and the readiness poll go through) and
per check call. Times are ``time.time()``
so that intervals of different processes line up. Without the env var the plugin does nothing.
"""
from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TIMING_ENV = "BENCH_TIMING_DIR"
_EVENTS: list[dict[str, Any]] = []
_RESTORE: list[Callable[[], None]] = []


def _timed(kind: str, label: Callable[..., str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                _EVENTS.append({"kind": kind, "label": label(*args, **kwargs), "t0": t0, "t1": time.time()})
        return timed
    return wrap


def _patch(owner: Any, name: str, kind: str, label: Callable[..., str]) -> None:
    original = getattr(owner, name)
    setattr(owner, name, _timed(kind, label)(original))
    _RESTORE.append(lambda: setattr(owner, name, original))


def _patch_boot(cls: Any) -> None:
    """A boot runs from ``launch`` (maybe long before, when booted ahead) to the end of ``wait_ready``."""
    original = cls.wait_ready

    @functools.wraps(original)
    def timed(server: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(server, *args, **kwargs)
        finally:
            _EVENTS.append({"kind": "boot", "label": _cell_of(server), "t0": server.launched_at or time.time(),
                            "t1": time.time()})

    cls.wait_ready = timed
    _RESTORE.append(lambda: setattr(cls, "wait_ready", original))


def _cell_of(server: Any, *_: Any, **__: Any) -> str:
    return str(server.spec.cell_id)


def _url_of(_session: Any, request: Any, *_: Any, **__: Any) -> str:
    return f"{request.method} {request.url}"


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get(TIMING_ENV) or _RESTORE:
        return
    import requests

    from harness.boot.lifecycle import ServerProcess

    _patch_boot(ServerProcess)
    _patch(ServerProcess, "stop", "stop", _cell_of)
    _patch(requests.Session, "send", "request", _url_of)
    role = "worker" if hasattr(config, "workerinput") else "controller"
    _EVENTS.append({"kind": "process", "label": role, "t0": time.time(), "t1": None})


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    t0 = time.time()
    try:
        return (yield)
    finally:
        if _RESTORE:
            _EVENTS.append({"kind": "check", "label": item.nodeid, "t0": t0, "t1": time.time()})


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = os.environ.get(TIMING_ENV)
    if not folder or not _RESTORE:
        return
    for event in _EVENTS:
        if event["kind"] == "process":
            event["t1"] = time.time()
    path = Path(folder) / f"{os.getpid()}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in _EVENTS))
    while _RESTORE:
        _RESTORE.pop()()
    _EVENTS.clear()
