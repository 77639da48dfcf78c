from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "suites" / "test_matrix.py"


@pytest.fixture
def matrix_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir holding the real matrix suite file."""
    pytester.makepyfile(test_matrix=SUITE.read_text())
    return pytester


_FAULTS: dict[str, dict] = {}
_MARGINS: dict[str, str] = {}  # nodeid -> one line of tests/faultmargin.py


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect fault-suite outcomes (works under xdist: reports reach the controller)."""
    for key, value in report.user_properties:
        if key == "fault_margin" and report.when == "call":
            _MARGINS[report.nodeid] = value
        if key == "fault_scenario":
            entry = _FAULTS.setdefault(report.nodeid, {"passed": True})
            entry.update(value)
    if report.nodeid in _FAULTS or "test_fault_suite.py" in report.nodeid:
        entry = _FAULTS.setdefault(report.nodeid, {"passed": True})
        entry["passed"] = entry["passed"] and not report.failed


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _FAULTS:
        ok = sum(e["passed"] for e in _FAULTS.values())
        lost = sum(e.get("lost", 0) for e in _FAULTS.values())
        procs = sum(e.get("leaked", 0) for e in _FAULTS.values())
        held = sum(e.get("held", 0) for e in _FAULTS.values())
        terminalreporter.write_line(f"fault suite: {ok}/{len(_FAULTS)} scenarios passed, results lost: {lost}, "
                                    f"processes leaked: {procs}, leases leaked: {held}")
    if _MARGINS:
        terminalreporter.write_line("fault margins (observed / limit; a caught fault's probed limit '*' >= 2x, "
                                    "a passing check's limits <= 0.5x):")
        for line in sorted(_MARGINS.values()):
            terminalreporter.write_line(f"  {line}")


@pytest.fixture(scope="session", autouse=True)
def _digest_memo(tmp_path_factory: pytest.TempPathFactory):
    """Checkpoint digests of the tests' throwaway checkpoints are memoised in a temporary directory,
    not in ~/.cache/llm-harness/digests (harness/numerics/digestmemo.py)."""
    from harness.numerics.digestmemo import DIGEST_DIR_ENV

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DIGEST_DIR_ENV, str(tmp_path_factory.mktemp("digests")))
        yield
