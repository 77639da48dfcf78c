"""One session object per pytest process: registered by name behind one StashKey, inert without matrix tests."""
from __future__ import annotations

from pathlib import Path

import pytest

PROBE = '''
from harness.plugin.main import SESSION_NAME, session_of


def test_the_session_is_the_registered_plugin(request):
    session = session_of(request.config)
    assert request.config.pluginmanager.get_plugin(SESSION_NAME) is session
    assert request.config.pluginmanager.get_plugin("harness-recorder") is session.recorder
    assert set(session.index.by_id) == {p.cell.id for p in session.plan.cells} == {
        "hf-cpu-tiny-llama-none", "hf-cpu-tiny-llama-disk"}
    assert session.index.cell_of_param("hf-cpu-tiny-llama-disk-accuracy") == "hf-cpu-tiny-llama-disk"
'''


class Unconfigured:
    """A plugin that looks, after pytest's unconfigure, for the session it saw during the run."""

    def __init__(self) -> None:
        self.during: object = None
        self.after: object = "unset"

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.during = session.config.pluginmanager.get_plugin("harness-session")

    @pytest.hookimpl(wrapper=True)
    def pytest_unconfigure(self, config: pytest.Config):  # around every other unconfigure
        yield
        self.after = config.pluginmanager.get_plugin("harness-session")


def test_one_session_is_registered_and_a_run_without_matrix_tests_writes_nothing(pytester: pytest.Pytester,
                                                                               tmp_path: Path) -> None:
    pytester.makepyfile(test_probe=PROBE)
    out = tmp_path / "run"
    seen = Unconfigured()
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--devices", "cpu", "--models", "tiny-llama",
                                          "--offload-modes", "none,disk", "--harness-out", str(out), plugins=[seen])
    result.assert_outcomes(passed=1)
    assert seen.during is not None and type(seen.during).__name__ == "HarnessSession"
    assert not out.exists() or not any(out.iterdir())  # no matrix test collected: no manifest, no results, no report
    assert not (tmp_path / "history").exists()
    assert "harness verdict" not in result.stdout.str()


def test_the_session_is_unregistered_when_pytest_unconfigures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    seen = Unconfigured()
    pytester.runpytest_inprocess("-p", "no:cacheprovider", plugins=[seen]).assert_outcomes(passed=1)
    assert seen.during is not None and seen.after is None


def test_a_bad_option_is_a_usage_error_before_any_session_exists(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--models", "llama-70b")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "llama-70b" in result.stderr.str()
