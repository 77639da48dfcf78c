"""The run's one stateful object: options, the plan by cell id, devices, boots ahead, the recorder.

harness/plugin/main.py decides that a pytest session is a harness session and registers one
``HarnessSession`` as the plugin ``"harness-session"`` (behind one StashKey); every hook below is
a method of it, so no hook fetches pieces of state or rebuilds a lookup. Each pytest process has
its own: the controller of an xdist run records, renders and prints; a worker boots and checks.

Matrix tests are the ones that request the ``harness_runtime`` fixture (see suites/). Each cell
is one session-scoped parameter, so its runtime boots once and serves every check of the cell.
Under xdist, harness.plugin.scheduling.CellScheduling sends all of a cell's checks to one worker.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.boot import cellrun, lifecycle
from harness.boot.bootahead import BootAhead, next_cells, run_order
from harness.boot.devices import DeviceInventory, inventory
from harness.boot.preflight import Preflight
from harness.config.matrix import Cell
from harness.config.options import HarnessOptions
from harness.config.shard import assign, durations_from_results
from harness.errors import PREFLIGHT_REASON, ConfigError, PreflightError, RuntimeStartError
from harness.plugin import refboot
from harness.plugin.interrupts import InterruptGuard, honour_sigint
from harness.plugin.plan import Plan, build_plan
from harness.plugin.progress import CellProgress
from harness.plugin.recorder import NA_KEY, RECORD_PROPERTY, RESULT_KEY, RUNTIME_INFO_KEY, ResultRecorder, record_data
from harness.plugin.selection import PlanIndex, cell_of, check_of, marks, split_shard, why_not
from harness.plugin.terminal import line_writer, say
from harness.plugin.verdict import gated_exit, write_verdict

if TYPE_CHECKING:
    from harness.checks.base import CheckResult
    from harness.reports.builder import ReportOutcome
    from harness.reports.data import ReportData
    from harness.reports.sections import Section

SESSION_NAME = "harness-session"
RECORDER_NAME = "harness-recorder"
START_ERRORS = (PREFLIGHT_REASON, "boot-crash:", "boot-timeout:")  # reasons of a cell whose runtime never came up
REFERENCE_CHECKS = frozenset({"logprob_parity", "accuracy"})  # checks that may need an accelerator reference


class HarnessSession:
    """The state of one harness run in one pytest process, and the harness's pytest hooks."""

    def __init__(self, config: pytest.Config, options: HarnessOptions, plan: Plan, *,
                 devices: dict[str, DeviceInventory] | None = None, durations: dict[str, float] | None = None) -> None:
        self.config = config
        self.options = options
        self.index = PlanIndex.of(plan)
        self.worker = hasattr(config, "workerinput")
        self.durations: dict[str, float] = durations or {}  # an earlier run's cell durations: shards, xdist order
        self.recorder: ResultRecorder | None = None  # where records arrive: the controller
        self.progress: CellProgress | None = None
        self.ahead: BootAhead | None = None  # one process runs every cell in turn: the next boots overlap
        self.preflight: Preflight | None = None
        self.order: list[str] = []  # cell ids in the order they will run (single process)
        self.outcome: ReportOutcome | None = None
        self.shard_had_cells = False  # the matrix had cells before --shard kept this shard's
        self.results: dict[tuple[str, str], CheckResult] = {}  # (cell id, check) -> result, until its report
        self._devices = devices

    @classmethod
    def from_config(cls, config: pytest.Config) -> HarnessSession:
        """Validate the options and expand the matrix; a bad value is a usage error that says the fix."""
        try:
            options = HarnessOptions.from_config(config)
            plan = build_plan(options)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        worker = getattr(config, "workerinput", None)
        if worker is not None:  # an xdist worker: the controller probed devices and read durations once
            devices = {k: DeviceInventory(**_tuples(v)) for k, v in worker["harness_devices"].items()}
            return cls(config, options, plan, devices=devices, durations=worker["harness_durations"])
        durations = durations_from_results(options.shard_durations or options.out_dir / "results.jsonl")
        return cls(config, options, plan, durations=durations)

    @property
    def plan(self) -> Plan:
        return self.index.plan

    @property
    def devices(self) -> dict[str, DeviceInventory]:
        """Every device kind of the matrix, probed once per run (in the runtime's Python)."""
        if self._devices is None:
            cells = self.plan.cells
            kinds = tuple(dict.fromkeys(p.cell.device for p in cells))
            python = {p.cell.device: self.options.python_for(p.cell.runtime) for p in reversed(cells)}
            self._devices = inventory(kinds, python, dict(self.options.simulate))
        return self._devices

    # -- set-up: the parts that listen to hooks of their own ------------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        """Called once this session is registered: register its parts for this process."""
        if self.worker:
            if self.options.retries:
                self._register_retry()
            return
        self.recorder = ResultRecorder(self.options.out_dir, sys.argv)
        config.pluginmanager.register(self.recorder, RECORDER_NAME)
        honour_sigint()  # Ctrl-C stops the run even when a shell started it with SIGINT ignored
        config.pluginmanager.register(InterruptGuard(RECORDER_NAME, self.report_sections), "harness-interrupts")
        if self.options.progress:  # booting lines come from the runtime hooks, cell lines from the reports
            self.progress = CellProgress(line_writer(config))
            config.pluginmanager.register(self.progress, "harness-progress")
        if self.options.boot_ahead:
            self.ahead = BootAhead(self.options.boot_ahead, hook=config.hook)
        if self.options.retries and config.getoption("dist", "no") == "no":  # xdist workers register their own
            self._register_retry()

    def _register_retry(self) -> None:
        """Failing cells boot again once after the others ran (harness/plugin/retry.py); nothing boots ahead then."""
        from harness.plugin.retry import CellRetry

        self.config.pluginmanager.register(CellRetry(self.stop_booting_ahead), "harness-retry")

    def stop_booting_ahead(self) -> None:
        """Stop every boot launched ahead; nothing boots ahead after this."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            ahead.close()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Backstop: stop what this process started; the controller also reaps its run's strays."""
        lifecycle.stop_all()
        if self.recorder is not None and self.recorder.started_writing:
            lifecycle.reap("HARNESS_OUT", str(self.recorder.out_dir))

    # -- xdist controller -----------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Hand each worker the device inventory and the durations."""
        node.workerinput["harness_devices"] = {k: v.as_dict() for k, v in self.devices.items()}
        node.workerinput["harness_durations"] = self.durations

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Plain ``-n N`` distributes whole cells, so each cell boots on one worker, once."""
        if config.getoption("dist") not in ("load", "loadgroup") or not self.plan.cells:
            return None
        from harness.plugin.scheduling import CellScheduling

        return CellScheduling(config, log, cells=self.index.cell_ids, checks=self.plan.checks, durations=self.durations)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Workers collected (none has run a test yet), so begin the run directory."""
        cells = (self.index.cell_of_param(i.partition("[")[2].rpartition("]")[0]) for i in ids)
        self._begin([c for c in cells if c is not None])

    # -- collection -----------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """--require-devices: a run that would skip every cell of a required device fails up front."""
        if self.options.require_devices and not self.worker:
            _require_devices(self.options.require_devices, self.devices)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "harness_runtime" not in metafunc.fixturenames:
            return
        params = [pytest.param(p.cell, id=p.cell.id, marks=marks(p.cell, self.plan)) for p in self.plan.cells]
        metafunc.parametrize("harness_runtime", params, indirect=True, scope="session")
        if "harness_check" in metafunc.fixturenames:
            metafunc.parametrize("harness_check", list(self.plan.checks))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """After -m/-k deselection: keep this shard's cells, then mark N/A and unrunnable ones skipped."""
        if self.options.shard:
            self._keep_shard(items, self.options.shard)
        for item in items:
            cell = cell_of(item)
            if cell is None:
                continue
            na, skip = why_not(self.index, self.devices, cell, check_of(item))
            if na:
                item.stash[NA_KEY] = na
                item.add_marker(pytest.mark.skip(reason=f"N/A: {na}"))
            elif skip:
                item.add_marker(pytest.mark.skip(reason=skip))

    def _keep_shard(self, items: list[pytest.Item], shard: tuple[int, int]) -> None:
        self.shard_had_cells = any(cell_of(i) is not None for i in items)
        keep, drop = split_shard(items, assign(self.index.cell_ids, self.durations, shard[1]), shard[0])
        if drop:
            self.config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Single process: the matrix is known, so begin the run directory and preflight the runtimes
        before any cell boots. An xdist worker preflights a runtime when its first cell of it comes."""
        runnable = [c for c in (cell_of(i) for i in session.items if i.get_closest_marker("skip") is None) if c is not None]
        self.preflight = Preflight(self.options)
        self.preflight.want(runnable)
        if not self.worker:
            self._begin([c.id for c in map(cell_of, session.items) if c is not None])
            for failure in self.preflight.run():  # one line per runtime that cannot run
                say(self.config, failure.line, red=True)
            self.order = run_order(c for c in runnable if self.preflight.failure(c) is None)

    def _begin(self, cells: list[str]) -> None:
        """Begin the run directory (a previous run there moves to the history) once cells are known.

        Not for --collect-only (nothing runs: the last run stays where it is), nor for a session that
        collected no matrix test; a shard left with no cell still writes an (empty) run for `harness merge`.
        """
        recorder = self.recorder
        if (not cells and not self.shard_had_cells) or recorder is None or recorder.started_writing \
                or self.config.option.collectonly:
            return
        stale = lifecycle.reap("HARNESS_OUT", str(recorder.out_dir))  # left by a killed earlier run into this dir
        if stale:
            say(self.config, f"harness: stopped {len(stale)} runtime process(es) left by an earlier run in "
                             f"{recorder.out_dir}", yellow=True)
        recorder.begin()
        if self.progress is not None:
            self.progress.expect(cells)

    # -- running a cell -------------------------------------------------------------------------

    def runtime(self, cell: Cell) -> Iterator[cellrun.RunningRuntime]:
        """The body of the ``harness_runtime`` fixture: the cell's booted runtime, torn down after it."""
        failure = self.preflight.failure(cell) if self.preflight is not None else None
        if failure is not None:  # its interpreter cannot import the runtime: booting would only crash
            raise PreflightError(cell.id, failure.cause)
        inv, card = self.devices.get(cell.device), self.plan.card(cell)
        pending = self.ahead.take(cell.id) if self.ahead is not None else None
        if self.ahead is not None and pending is None:
            self.ahead.close()  # booted ahead for cells that did not come next: they may hold the cards this one needs
        if pending is None and REFERENCE_CHECKS & set(self.plan.checks):
            refboot.prepare(cell, card, self.options)  # an accelerator reference, before our cards
        with cellrun.cell_runtime(cell, card, self.options, inv, pending, hook=self.config.hook) as rt:
            if self.ahead is not None:
                self._boot_ahead(self.ahead, cell)
            yield rt

    def _boot_ahead(self, ahead: BootAhead, current: Cell) -> None:
        """Launch the runtimes of the cells that run next, while ``current`` is being checked."""
        for cell_id in next_cells(self.order, current.id, ahead.depth):
            cell = self.index.cell(cell_id)
            card = self.plan.card(cell)
            if not refboot.ready(cell, card, self.options):
                break  # its accelerator reference comes first, before the cell holds a card
            if not ahead.start(cell, card, self.options, self.devices.get(cell.device)):
                break  # strictly in order: a later cell must not take the cards this one will wait for

    def pytest_harness_check_result(self, cell: Cell, check: str, result: CheckResult, seconds: float) -> None:
        """Keep the result until the item's report is made (``pytest_runtest_makereport``)."""
        self.results[(cell.id, check)] = result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report: pytest.TestReport = yield
        cell = cell_of(item)
        if cell is None:
            return report
        check = check_of(item)
        result = self.results.pop((cell.id, check), None) if call.when == "call" and check else None
        if result is not None:
            item.stash[RESULT_KEY] = result
        rt = item.funcargs.get("harness_runtime") if hasattr(item, "funcargs") else None
        if isinstance(rt, cellrun.RunningRuntime):
            item.stash[RUNTIME_INFO_KEY] = _runtime_info(rt)
        _attach_record(item, call, report)
        return report

    # -- the end of the run ---------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """After the last cell is torn down: stop boots launched ahead for cells that never ran (-x,
        Ctrl-C), close the manifest and render the report."""
        try:
            self.stop_booting_ahead()
        except Exception as exc:  # the results still get their manifest and report; unconfigure reaps the rest
            print(f"harness: stopping a runtime booted ahead failed ({type(exc).__name__}: {exc})", file=sys.stderr)
        recorder = self.recorder
        if recorder is None or not recorder.started_writing:
            return
        recorder.finish(exitstatus, {k: v.as_dict() for k, v in (self._devices or {}).items()})
        try:
            from harness.reports.builder import build_outcome

            self.outcome = build_outcome(recorder.out_dir, sections=self.report_sections)
        except Exception as exc:  # the results are safe on disk; say how to render them later
            say(self.config, f"harness: rendering the report failed ({type(exc).__name__}: {exc}); results are intact "
                             f"in {recorder.out_dir / 'results.jsonl'}; retry with `harness report {recorder.out_dir}`",
                red=True)
            if session.exitstatus == pytest.ExitCode.OK:  # no verdict: never a green exit
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        session.exitstatus = gated_exit(session.exitstatus, self.outcome.verdict)

    def report_sections(self, data: ReportData) -> list[Section]:
        """The sections other plugins add to the report (``pytest_harness_report_sections``), in hook order."""
        found = self.config.hook.pytest_harness_report_sections(data=data)
        return [section for sections in found for section in (sections or ())]

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
        """Cells whose runtime never came up are counted as "errors" in a category of their own, so pytest's ERRORS
        section does not repeat each of their checks: the terminal summary groups them by cause."""
        if report.when == "setup" and report.failed and _record_reason(report).startswith(START_ERRORS):
            return "errors", "E", "ERROR"
        return None

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        """The run's failures grouped by cause, then the verdict, what ran, and the report's path."""
        if self.recorder is not None and self.recorder.started_writing:
            write_verdict(terminalreporter, self.recorder.out_dir, self.outcome)


def _require_devices(required: tuple[str, ...], found: dict[str, DeviceInventory]) -> None:
    for kind in required:
        inv = found.get(kind)
        if inv is None or inv.count == 0 or inv.simulated:
            how = "it was simulated (--simulate-devices), which never satisfies a requirement" if inv and inv.simulated else (
                inv.absent_reason if inv else f"the matrix has no {kind} cells (add it with --devices)")
            raise pytest.UsageError(f"--require-devices {kind}: no {kind.upper()} device available: {how}. "
                                    "A run that requires this device must not pass by skipping its cells.")


def _runtime_info(rt: cellrun.RunningRuntime) -> dict[str, Any]:
    return {"boot_s": rt.boot_s, "command": rt.command, "fingerprint": rt.fingerprint, "log_path": str(rt.log_path),
            "workarounds": list(rt.workarounds), "simulated": rt.simulated}


def _attach_record(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """The item's result record travels on the report (also from xdist workers) for the recorder."""
    data = record_data(item, call, report)
    failed_start = call.excinfo.value if call.excinfo is not None else None
    started = not isinstance(failed_start, RuntimeStartError)
    if not started:  # the cause is in the reason, the log tail in the results: one line, no traceback
        report.longrepr = str(failed_start)
    if data is None:
        return
    if data["status"] in ("fail", "error") and not data.get("log_tail") and data.get("log_path"):
        data["log_tail"] = lifecycle.tail(Path(data["log_path"]))
    if data.get("log_tail") and started:
        report.sections.append(("runtime log tail", data["log_tail"]))
    report.user_properties.append((RECORD_PROPERTY, data))


def _record_reason(report: pytest.TestReport) -> str:
    return next((str(v.get("reason", "")) for k, v in report.user_properties
                 if k == RECORD_PROPERTY and isinstance(v, dict)), "")


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    """DeviceInventory fields that travel as lists through xdist come back as tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
