"""The pytest plugin: hooks decide, the harness modules do the work.

Matrix tests are the ones that request the ``harness_runtime`` fixture (see suites/). Each cell
is one session-scoped parameter, so its runtime boots once and serves every check of the cell.
Under xdist, harness.plugin.scheduling.CellScheduling sends all of a cell's checks to one worker.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.boot import cellrun, lifecycle
from harness.plugin import refboot
from harness.boot.bootahead import BootAhead, next_cells, run_order
from harness.boot.devices import DeviceInventory, inventory
from harness.errors import PREFLIGHT_REASON, ConfigError, PreflightError, RuntimeStartError
from harness.plugin.interrupts import InterruptGuard, honour_sigint
from harness.config.matrix import Cell
from harness.config.options import HarnessOptions, add_options
from harness.plugin.plan import Plan, build_plan
from harness.boot.preflight import Preflight
from harness.plugin.progress import CellProgress
from harness.plugin.recorder import NA_KEY, RECORD_PROPERTY, RUNTIME_INFO_KEY, ResultRecorder, record_data
from harness.config.shard import assign, durations_from_results
from harness.plugin.verdict import gated_exit, write_verdict

if TYPE_CHECKING:
    from harness.reports.builder import ReportOutcome

OPTIONS_KEY = pytest.StashKey[HarnessOptions]()
PLAN_KEY = pytest.StashKey[Plan]()
DEVICES_KEY = pytest.StashKey[dict[str, DeviceInventory]]()
DURATIONS_KEY = pytest.StashKey[dict[str, float]]()
PROGRESS_KEY = pytest.StashKey[CellProgress]()
AHEAD_KEY = pytest.StashKey[BootAhead]()
ORDER_KEY = pytest.StashKey[list[str]]()
OUTCOME_KEY = pytest.StashKey["ReportOutcome"]()
PREFLIGHT_KEY = pytest.StashKey[Preflight]()
SHARD_HAD_CELLS_KEY = pytest.StashKey[bool]()  # the matrix had cells before --shard kept this shard's
RECORDER_NAME = "harness-recorder"
START_ERRORS = (PREFLIGHT_REASON, "boot-crash:", "boot-timeout:")  # reasons of a cell whose runtime never came up
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
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    try:
        options = config.stash[OPTIONS_KEY] = HarnessOptions.from_config(config)
        config.stash[PLAN_KEY] = build_plan(options)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    worker = getattr(config, "workerinput", None)
    if worker is not None:  # an xdist worker: the controller probed devices and read durations once
        config.stash[DEVICES_KEY] = {k: DeviceInventory(**_tuples(v)) for k, v in worker["harness_devices"].items()}
        config.stash[DURATIONS_KEY] = worker["harness_durations"]
        if options.retries:
            _register_retry(config)
        return
    # an earlier run's cell durations: shards are balanced and xdist hands out cells longest first by them
    config.stash[DURATIONS_KEY] = durations_from_results(options.shard_durations or options.out_dir / "results.jsonl")
    config.pluginmanager.register(ResultRecorder(options.out_dir, sys.argv), RECORDER_NAME)
    honour_sigint()  # Ctrl-C stops the run even when a shell started it with SIGINT ignored
    config.pluginmanager.register(InterruptGuard(RECORDER_NAME), "harness-interrupts")
    if options.progress:
        progress = config.stash[PROGRESS_KEY] = CellProgress(_line_writer(config))
        config.pluginmanager.register(progress, "harness-progress")
    if options.boot_ahead:  # one process runs every cell in turn: overlap the next boot with the checks
        announce = config.stash[PROGRESS_KEY].booting_ahead if PROGRESS_KEY in config.stash else None
        config.stash[AHEAD_KEY] = BootAhead(options.boot_ahead, announce, hook=config.hook)
    if options.retries and config.getoption("dist", "no") == "no":  # xdist workers register their own
        _register_retry(config)


def _register_retry(config: pytest.Config) -> None:
    """Failing cells boot again once after the others ran (harness/plugin/retry.py); nothing boots ahead then."""
    from harness.plugin.retry import CellRetry

    def stop_booting_ahead() -> None:
        ahead = config.stash.get(AHEAD_KEY, None)
        if ahead is not None:
            ahead.close()
            del config.stash[AHEAD_KEY]

    config.pluginmanager.register(CellRetry(stop_booting_ahead), "harness-retry")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Backstop: stop what this process started; the controller also reaps its run's strays."""
    lifecycle.stop_all()
    recorder = config.pluginmanager.get_plugin(RECORDER_NAME)
    if recorder is not None and recorder.started_writing:
        lifecycle.reap("HARNESS_OUT", str(recorder.out_dir))


def plan_of(config: pytest.Config) -> Plan:
    """The run's matrix (validated when pytest configured)."""
    return config.stash[PLAN_KEY]


def devices_of(config: pytest.Config) -> dict[str, DeviceInventory]:
    """Every device kind of the matrix, probed once per run (in the runtime's Python)."""
    if DEVICES_KEY not in config.stash:
        options, plan = config.stash[OPTIONS_KEY], plan_of(config)
        kinds = tuple(dict.fromkeys(p.cell.device for p in plan.cells))
        python = {p.cell.device: options.python_for(p.cell.runtime) for p in reversed(plan.cells)}
        config.stash[DEVICES_KEY] = inventory(kinds, python, dict(options.simulate))
    return config.stash[DEVICES_KEY]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand each worker the device inventory and shard durations."""
    node.workerinput["harness_devices"] = {k: v.as_dict() for k, v in devices_of(node.config).items()}
    node.workerinput["harness_durations"] = node.config.stash.get(DURATIONS_KEY, {})


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Plain ``-n N`` distributes whole cells, so each cell boots on one worker, once."""
    plan = plan_of(config)
    if config.getoption("dist") not in ("load", "loadgroup") or not plan.cells:
        return None
    from harness.plugin.scheduling import CellScheduling

    return CellScheduling(config, log, cells=[p.cell.id for p in plan.cells], checks=plan.checks,
                          durations=config.stash.get(DURATIONS_KEY, {}))


def pytest_sessionstart(session: pytest.Session) -> None:
    """--require-devices: a run that would skip every cell of a required device fails up front."""
    options = session.config.stash[OPTIONS_KEY]
    if not options.require_devices or hasattr(session.config, "workerinput"):
        return
    found = devices_of(session.config)
    for kind in options.require_devices:
        inv = found.get(kind)
        if inv is None or inv.count == 0 or inv.simulated:
            how = "it was simulated (--simulate-devices), which never satisfies a requirement" if inv and inv.simulated else (
                inv.absent_reason if inv else f"the matrix has no {kind} cells (add it with --devices)")
            raise pytest.UsageError(f"--require-devices {kind}: no {kind.upper()} device available: {how}. "
                                    "A run that requires this device must not pass by skipping its cells.")


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
    """After -m/-k deselection: keep this shard's cells, then mark N/A and unrunnable ones skipped."""
    options = config.stash[OPTIONS_KEY]
    if options.shard:
        _keep_shard(config, items, options.shard)
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


def _keep_shard(config: pytest.Config, items: list[pytest.Item], shard: tuple[int, int]) -> None:
    cells = [p.cell.id for p in plan_of(config).cells]
    config.stash[SHARD_HAD_CELLS_KEY] = any(_cell_of(i) is not None for i in items)
    owner = assign(cells, config.stash.get(DURATIONS_KEY, {}), shard[1])
    keep, drop = [], []
    for item in items:
        cell = _cell_of(item)
        (drop if cell is not None and owner[cell.id] != shard[0] else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _why_not(config: pytest.Config, cell: Cell, check: str | None) -> tuple[str | None, str | None]:
    plan = plan_of(config)
    planned = next(p for p in plan.cells if p.cell == cell)
    if planned.na_reason:
        return planned.na_reason, None
    if check is not None:
        from harness.checks import CHECKS
        from harness.runtimes import RUNTIMES

        card = plan.card(cell)
        na = CHECKS.get(check).na_reason(cell, card) or RUNTIMES.get(cell.runtime).check_na_reason(check, cell, card)
        if na:
            return na, None
    unavailable = plan.card(cell).unavailable_reason()
    if unavailable:
        return None, unavailable
    return None, devices_of(config)[cell.device].absent_reason


def _cell_of(item: pytest.Item) -> Cell | None:
    cell = getattr(getattr(item, "callspec", None), "params", {}).get("harness_runtime")
    return cell if isinstance(cell, Cell) else None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Single process: the matrix is known, so begin the run directory and preflight the runtimes
    before any cell boots. An xdist worker preflights a runtime when its first cell of it comes."""
    config = session.config
    runnable = [c for c in (_cell_of(i) for i in session.items if i.get_closest_marker("skip") is None) if c is not None]
    preflight = config.stash[PREFLIGHT_KEY] = Preflight(config.stash[OPTIONS_KEY])
    preflight.want(runnable)
    if not hasattr(config, "workerinput"):
        _begin(config, [c.id for c in map(_cell_of, session.items) if c is not None])
        _preflight(config, preflight)
        config.stash[ORDER_KEY] = run_order(c for c in runnable if preflight.failure(c) is None)


def _preflight(config: pytest.Config, preflight: Preflight) -> None:
    """Probe every runtime that has a cell to run; one line per runtime that cannot run."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    for failure in preflight.run():
        tr.write_line(failure.line, red=True) if tr else print(failure.line, file=sys.stderr)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """xdist controller: workers collected (none has run a test yet), so begin the run directory."""
    config = node.config
    by_param = {f"{p.cell.id}-{c}": p.cell.id for p in plan_of(config).cells for c in plan_of(config).checks}
    cells = [by_param.get(i.partition("[")[2].rpartition("]")[0]) for i in ids]
    _begin(config, [c for c in cells if c is not None])


def _begin(config: pytest.Config, cells: list[str]) -> None:
    """Begin the run directory (a previous run there moves to the history) once cells are known.

    Not for --collect-only (nothing runs: the last run stays where it is), nor for a session that
    collected no matrix test; a shard left with no cell still writes an (empty) run for `harness merge`.
    """
    recorder = config.pluginmanager.get_plugin(RECORDER_NAME)
    empty_shard = config.stash.get(SHARD_HAD_CELLS_KEY, False)
    if (not cells and not empty_shard) or recorder is None or recorder.started_writing or config.option.collectonly:
        return
    stale = lifecycle.reap("HARNESS_OUT", str(recorder.out_dir))  # left by a killed earlier run into this dir
    if stale:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        msg = f"harness: stopped {len(stale)} runtime process(es) left by an earlier run in {recorder.out_dir}"
        tr.write_line(msg, yellow=True) if tr else print(msg)
    recorder.begin()
    if PROGRESS_KEY in config.stash:
        config.stash[PROGRESS_KEY].expect(cells)


@pytest.fixture(scope="session")
def harness_runtime(request: pytest.FixtureRequest) -> Any:
    """The cell's booted runtime; torn down when the session moves to the next cell."""
    cell: Cell = request.param
    config = request.config
    failure = config.stash[PREFLIGHT_KEY].failure(cell) if PREFLIGHT_KEY in config.stash else None
    if failure is not None:  # its interpreter cannot import the runtime: booting would only crash
        raise PreflightError(cell.id, failure.cause)
    inv, card = devices_of(config).get(cell.device), plan_of(config).card(cell)
    ahead = config.stash.get(AHEAD_KEY, None)
    pending = ahead.take(cell.id) if ahead is not None else None
    if ahead is not None and pending is None:
        ahead.close()  # booted ahead for cells that did not come next: they may hold the cards this one needs
    if pending is None and {"logprob_parity", "accuracy"} & set(plan_of(config).checks):
        refboot.prepare(cell, card, config.stash[OPTIONS_KEY])  # an accelerator reference, before our cards
    if PROGRESS_KEY in config.stash and pending is None:
        config.stash[PROGRESS_KEY].booting(cell.id)
    with cellrun.cell_runtime(cell, card, config.stash[OPTIONS_KEY], inv, pending, hook=config.hook) as rt:
        if ahead is not None:
            _boot_ahead(config, ahead, cell)
        yield rt


def _boot_ahead(config: pytest.Config, ahead: BootAhead, current: Cell) -> None:
    """Launch the runtimes of the cells that run next, while ``current`` is being checked."""
    plan = plan_of(config)
    by_id = {p.cell.id: p.cell for p in plan.cells}
    for cell_id in next_cells(config.stash.get(ORDER_KEY, []), current.id, ahead.depth):
        cell = by_id[cell_id]
        if not refboot.ready(cell, plan.card(cell), config.stash[OPTIONS_KEY]):
            break  # its accelerator reference comes first, before the cell holds a card
        if not ahead.start(cell, plan.card(cell), config.stash[OPTIONS_KEY], devices_of(config).get(cell.device)):
            break  # strictly in order: a later cell must not take the cards this one will wait for


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    rt = item.funcargs.get("harness_runtime") if hasattr(item, "funcargs") else None
    if isinstance(rt, cellrun.RunningRuntime):
        item.stash[RUNTIME_INFO_KEY] = {"boot_s": rt.boot_s, "command": rt.command, "fingerprint": rt.fingerprint,
                                        "log_path": str(rt.log_path), "workarounds": list(rt.workarounds),
                                        "simulated": rt.simulated}
    data = record_data(item, call, report)
    started = call.excinfo is None or not isinstance(call.excinfo.value, RuntimeStartError)
    if not started:  # the cause is in the reason, the log tail in the results: one line, no traceback
        report.longrepr = str(call.excinfo.value)
    if data is not None:
        if data["status"] in ("fail", "error") and not data.get("log_tail") and data.get("log_path"):
            data["log_tail"] = lifecycle.tail(Path(data["log_path"]))
        if data.get("log_tail") and started:
            report.sections.append(("runtime log tail", data["log_tail"]))
        report.user_properties.append((RECORD_PROPERTY, data))
    return report


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After the last cell is torn down: stop boots launched ahead for cells that never ran (-x,
    Ctrl-C), close the manifest and render the report."""
    ahead = session.config.stash.get(AHEAD_KEY, None)
    try:
        if ahead is not None:
            ahead.close()
    except Exception as exc:  # the results still get their manifest and report; unconfigure reaps the rest
        print(f"harness: stopping a runtime booted ahead failed ({type(exc).__name__}: {exc})", file=sys.stderr)
    recorder = session.config.pluginmanager.get_plugin(RECORDER_NAME)
    if recorder is None or not recorder.started_writing:
        return
    found = session.config.stash.get(DEVICES_KEY, {})
    recorder.finish(exitstatus, {k: v.as_dict() for k, v in found.items()})
    try:
        from harness.reports.builder import build_outcome

        outcome = session.config.stash[OUTCOME_KEY] = build_outcome(recorder.out_dir)
    except Exception as exc:  # the results are safe on disk; say how to render them later
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        msg = (f"harness: rendering the report failed ({type(exc).__name__}: {exc}); results are intact in "
               f"{recorder.out_dir / 'results.jsonl'}; retry with `harness report {recorder.out_dir}`")
        tr.write_line(msg, red=True) if tr else print(msg, file=sys.stderr)
        if session.exitstatus == pytest.ExitCode.OK:  # no verdict: never a green exit
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        return
    session.exitstatus = gated_exit(session.exitstatus, outcome.verdict)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """Cells whose runtime never came up are counted as "errors" in a category of their own, so pytest's ERRORS
    section does not repeat each of their checks: the terminal summary groups them by cause."""
    if report.when == "setup" and report.failed and _record_reason(report).startswith(START_ERRORS):
        return "errors", "E", "ERROR"
    return None


def _record_reason(report: pytest.TestReport) -> str:
    return next((str(v.get("reason", "")) for k, v in report.user_properties if k == RECORD_PROPERTY), "")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The run's failures grouped by cause, then the verdict, what ran, and the report's path."""
    recorder = config.pluginmanager.get_plugin(RECORDER_NAME)
    if recorder is not None and recorder.started_writing:
        write_verdict(terminalreporter, recorder.out_dir, config.stash.get(OUTCOME_KEY, None))


def _line_writer(config: pytest.Config) -> Any:
    """A writer that starts on a fresh line even after pytest's progress dots, and reaches the
    terminal from inside a fixture too (where pytest captures output). Plugins are looked up at
    write time: the terminal reporter may be configured after this plugin."""

    def write(line: str) -> None:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        capman = config.pluginmanager.get_plugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
            if tr is None:
                print(line, flush=True)
                return
            if getattr(tr._tw, "width_of_current_line", 0):
                tr._tw.line()
            tr.write_line(line)

    return write


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    """DeviceInventory fields that travel as lists through xdist come back as tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
