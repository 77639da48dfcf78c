"""The pytest plugin's entry point: these hooks only decide; the run's state and hooks are one object.

``pytest_configure`` builds one ``HarnessSession`` (harness/plugin/session.py), keeps it behind
``SESSION_KEY`` and registers it as the plugin ``"harness-session"``; ``pytest_unconfigure``
unregisters it. The harness's own hooks (booting, ready, stopped, check result, report sections)
are declared in harness/hookspecs.py for any plugin or conftest.py to implement.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from harness.config.options import add_options
from harness.plugin.session import RECORDER_NAME, SESSION_NAME, START_ERRORS, HarnessSession

if TYPE_CHECKING:
    from harness.boot.cellrun import RunningRuntime
    from harness.reports.builder import ReportOutcome

__all__ = ["RECORDER_NAME", "SESSION_KEY", "SESSION_NAME", "START_ERRORS", "outcome_of", "session_of"]

SESSION_KEY = pytest.StashKey[HarnessSession]()
MARKERS = {
    "cpu": "matrix cell on the host CPU", "cuda": "matrix cell on an NVIDIA GPU", "npu": "matrix cell on an Ascend NPU",
    "rocm": "matrix cell on an AMD GPU", "xpu": "matrix cell on an Intel GPU", "offload": "matrix cell with weight offload",
    "moe": "matrix cell of a mixture-of-experts model",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from harness import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    """Every session that runs tests is a harness session (one that collects no matrix test writes
    nothing); ``pytest --help`` only shows the options."""
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    if getattr(config.option, "help", False):
        return
    session = config.stash[SESSION_KEY] = HarnessSession.from_config(config)
    config.pluginmanager.register(session, SESSION_NAME)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """After the session's own unconfigure (it stops what this process started): unregister it."""
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        return
    if config.pluginmanager.is_registered(session):
        config.pluginmanager.unregister(session)


def session_of(config: pytest.Config) -> HarnessSession:
    """This pytest session's harness state."""
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        raise pytest.UsageError("the harness plugin is not configured in this pytest session; "
                                "install the harness (pip install -e .) and do not disable it with -p no:harness")
    return session


def outcome_of(config: pytest.Config) -> ReportOutcome | None:
    """The report this session rendered, or None (nothing ran, or rendering failed)."""
    session = config.stash.get(SESSION_KEY, None)
    return session.outcome if session is not None else None


@pytest.fixture(scope="session")
def harness_runtime(request: pytest.FixtureRequest) -> Iterator[RunningRuntime]:
    """The cell's booted runtime; torn down when the session moves to the next cell."""
    yield from session_of(request.config).runtime(request.param)
