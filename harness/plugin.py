"""The pytest plugin: hooks decide, the harness modules do the work.

Matrix tests are the ones that request the ``harness_runtime`` fixture (see suites/). Each cell
is one session-scoped parameter, so its runtime boots once and serves every check of the cell.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from harness import cellrun, lifecycle
from harness.devices import DeviceInventory, probe
from harness.errors import ConfigError
from harness.matrix import Cell
from harness.options import HarnessOptions, add_options
from harness.plan import Plan, build_plan
from harness.recorder import NA_KEY, RECORD_PROPERTY, RUNTIME_INFO_KEY, ResultRecorder, record_data

OPTIONS_KEY = pytest.StashKey[HarnessOptions]()
PLAN_KEY = pytest.StashKey[Plan]()
DEVICES_KEY = pytest.StashKey[dict[str, DeviceInventory]]()
REPORT_PATH_KEY = pytest.StashKey[Path]()
RECORDER_NAME = "harness-recorder"
MARKERS = {
    "cpu": "matrix cell on the host CPU", "cuda": "matrix cell on an NVIDIA GPU", "npu": "matrix cell on an Ascend NPU",
    "rocm": "matrix cell on an AMD GPU", "xpu": "matrix cell on an Intel GPU", "offload": "matrix cell with weight offload",
    "moe": "matrix cell of a mixture-of-experts model",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    try:
        options = config.stash[OPTIONS_KEY] = HarnessOptions.from_config(config)
        config.stash[PLAN_KEY] = build_plan(options)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not hasattr(config, "workerinput"):  # the process that receives every report writes results
        config.pluginmanager.register(ResultRecorder(options.out_dir, sys.argv), RECORDER_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    lifecycle.stop_all()


def plan_of(config: pytest.Config) -> Plan:
    """The run's matrix (validated when pytest configured)."""
    return config.stash[PLAN_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "harness_runtime" not in metafunc.fixturenames:
        return
    plan = plan_of(metafunc.config)
    params = [pytest.param(p.cell, id=p.cell.id, marks=_marks(p.cell, plan)) for p in plan.cells]
    metafunc.parametrize("harness_runtime", params, indirect=True, scope="session")
    if "harness_check" in metafunc.fixturenames:
        metafunc.parametrize("harness_check", list(plan.checks))


def _marks(cell: Cell, plan: Plan) -> list[pytest.MarkDecorator]:
    marks = [getattr(pytest.mark, cell.device)]
    if cell.offload != "none":
        marks.append(pytest.mark.offload)
    if "moe" in plan.card(cell).tags:
        marks.append(pytest.mark.moe)
    return marks


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """After -m/-k deselection: mark N/A and unrunnable cells skipped, saying why."""
    for item in items:
        cell = _cell_of(item)
        if cell is None:
            continue
        na, skip = _why_not(config, cell, item.callspec.params.get("harness_check"))
        if na:
            item.stash[NA_KEY] = na
            item.add_marker(pytest.mark.skip(reason=f"N/A: {na}"))
        elif skip:
            item.add_marker(pytest.mark.skip(reason=skip))


def _why_not(config: pytest.Config, cell: Cell, check: str | None) -> tuple[str | None, str | None]:
    plan = plan_of(config)
    planned = next(p for p in plan.cells if p.cell == cell)
    if planned.na_reason:
        return planned.na_reason, None
    if check is not None:
        from harness.checks import CHECKS

        na = CHECKS.get(check).na_reason(cell, plan.card(cell))
        if na:
            return na, None
    unavailable = plan.card(cell).unavailable_reason()
    if unavailable:
        return None, unavailable
    return None, _device(config, cell).absent_reason


def _device(config: pytest.Config, cell: Cell) -> DeviceInventory:
    found = config.stash.setdefault(DEVICES_KEY, {})
    if cell.device not in found:
        found[cell.device] = probe(cell.device, config.stash[OPTIONS_KEY].python_for(cell.runtime))
    return found[cell.device]


def _cell_of(item: pytest.Item) -> Cell | None:
    cell = getattr(getattr(item, "callspec", None), "params", {}).get("harness_runtime")
    return cell if isinstance(cell, Cell) else None


@pytest.fixture(scope="session")
def harness_runtime(request: pytest.FixtureRequest) -> Any:
    """The cell's booted runtime; torn down when the session moves to the next cell."""
    cell: Cell = request.param
    plan = plan_of(request.config)
    rt = cellrun.boot(cell, plan.card(cell), request.config.stash[OPTIONS_KEY])
    try:
        yield rt
    finally:
        cellrun.shutdown(rt)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    rt = item.funcargs.get("harness_runtime") if hasattr(item, "funcargs") else None
    if isinstance(rt, cellrun.RunningRuntime):
        item.stash[RUNTIME_INFO_KEY] = {"boot_s": rt.boot_s, "command": rt.command, "fingerprint": rt.fingerprint,
                                        "log_path": str(rt.log_path), "workarounds": list(rt.workarounds)}
    data = record_data(item, call, report)
    if data is not None:
        if data["status"] in ("fail", "error") and not data.get("log_tail") and data.get("log_path"):
            data["log_tail"] = lifecycle.tail(Path(data["log_path"]))
        if data.get("log_tail"):
            report.sections.append(("runtime log tail", data["log_tail"]))
        report.user_properties.append((RECORD_PROPERTY, data))
    return report


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After the last cell is torn down: close the manifest and render the report."""
    recorder = session.config.pluginmanager.get_plugin(RECORDER_NAME)
    if recorder is None or not recorder.started_writing:
        return
    devices = {k: v.__dict__ for k, v in session.config.stash.get(DEVICES_KEY, {}).items()}
    recorder.finish(exitstatus, devices)
    from reports.builder import build_report

    path = build_report(recorder.out_dir)
    session.config.stash[REPORT_PATH_KEY] = path


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    path = config.stash.get(REPORT_PATH_KEY, None)
    if path is not None:
        terminalreporter.write_sep("-", "harness report")
        terminalreporter.write_line(f"results: {path.parent / 'results.jsonl'}")
        terminalreporter.write_line(f"report:  {path}")
