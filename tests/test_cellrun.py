"""A cell's boot owns what it acquires on one ExitStack: with a fake adapter, port and process, each
acquisition and release is written to a journal, and every way a boot can end is read back from it."""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from harness.boot import cellrun, leases
from harness.boot.bootahead import BootAhead
from harness.boot.devices import DeviceInventory
from harness.config.matrix import Cell
from harness.errors import RuntimeStartError
from harness.reference.store import default_options
from harness.runtimes.base import AdapterDefaults, LaunchSpec

CELL = Cell("hf", "npu", "m", "none")

# Each step of a boot after its cards are leased, in order; a fake fails at the one named.
STEPS = ("port", "checkpoint", "workdir", "tmpdir", "spec", "booting_hook", "launch", "ready", "server_info", "xfer",
         "ready_hook")
# What the steps that acquire something write to the journal, and what gives each back.
ACQUIRES = {"port": "lease port", "workdir": "make workdir", "tmpdir": "make tmpdir", "launch": "start process",
            "xfer": "make xfer"}
ACQUIRED = {"lease cards": "release cards", "lease port": "release port", "make workdir": "rm workdir",
            "make tmpdir": "rm tmpdir", "start process": "stop process", "make xfer": "rm xfer"}


class Boom(Exception):
    """The failure a fake injects."""


@dataclasses.dataclass
class Fakes:
    """What the fakes share: the journal, the step to fail at, and how each stop behaves."""

    journal: list[str] = dataclasses.field(default_factory=list)
    fail: str = ""
    busy_ports: int = 0  # the first N launches find their port taken
    stop_raises: bool = False
    launches: int = 0

    def step(self, name: str, acquired: str | None = None) -> None:
        if self.fail == name:
            raise Boom(name)
        if acquired:
            self.journal.append(acquired)


class FakeLease:
    def __init__(self, fakes: Fakes, cards: tuple[int, ...] = (0,)) -> None:
        self.fakes, self.cards, self.released = fakes, cards, False
        fakes.journal.append("lease cards")

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.fakes.journal.append("release cards")


class FakeHook:
    def __init__(self, fakes: Fakes) -> None:
        self.fakes = fakes
        self.calls: list[tuple[str, object]] = []

    def pytest_harness_runtime_booting(self, cell: Cell, command: str, attempt: int) -> None:
        self.calls.append(("booting", attempt))
        self.fakes.step("booting_hook")

    def pytest_harness_runtime_ready(self, runtime: Any) -> None:
        self.calls.append(("ready", runtime.cell.id))
        self.fakes.step("ready_hook")

    def pytest_harness_runtime_stopped(self, cell: Cell, reason: str, seconds: float) -> None:
        assert seconds >= 0
        self.calls.append(("stopped", reason))
        self.fakes.journal.append(f"hook stopped {reason}")


def install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Fakes:
    """Replace the adapter, the port lease, the checkpoint, the process and the transfer dir by fakes."""
    fakes = Fakes()
    monkeypatch.setattr(tempfile, "tempdir", str(_mkdir(tmp_path / "tmp")))
    real_mkdtemp, real_rmtree = tempfile.mkdtemp, shutil.rmtree

    class FakePort:
        def __init__(self, host: str, lease_dir: Path) -> None:
            fakes.step("port", "lease port")
            self.port, self.held = 40000 + len(fakes.journal), True

        def release(self) -> None:
            if self.held:
                self.held = False
                fakes.journal.append("release port")

    class FakeServer:
        def __init__(self, spec: LaunchSpec) -> None:
            self.spec, self.launched, self.stopped, self.attempt = spec, False, False, 0

        def launch(self) -> None:
            fakes.step("launch", "start process")
            fakes.launches += 1
            self.launched, self.attempt = True, fakes.launches

        def wait_ready(self) -> float:
            if self.attempt <= fakes.busy_ports:
                self.stop()
                raise RuntimeStartError("boot-crash", CELL.id, "port", None, "OSError: [Errno 98] Address already in use")
            fakes.step("ready")
            return 0.5

        def stop(self) -> None:
            if self.launched and not self.stopped:  # as ServerProcess: nothing to stop before launch, once after
                self.stopped = True
                fakes.journal.append("stop process")
                if fakes.stop_raises:
                    raise OSError("stop failed")

    class FakeClient:
        def server_info(self) -> dict[str, Any]:
            fakes.step("server_info")
            return {"weight_transfer": ["region"]}

    class FakeAdapter(AdapterDefaults):
        default_boot_timeout_s = 5.0

        def launch(self, ctx: Any) -> LaunchSpec:
            fakes.step("spec")
            return LaunchSpec(ctx.cell.id, ("fake-runtime", str(ctx.port)), {}, "http://x/health", ctx.log_path, 5.0)

        def client(self, url: str, cell_id: str) -> FakeClient:
            return FakeClient()

        def fingerprint(self, info: dict[str, Any]) -> dict[str, Any]:
            return {}

    def mkdtemp(prefix: str = "", **kw: Any) -> str:
        fakes.step("tmpdir" if prefix.startswith("htmp-") else "workdir")
        path = real_mkdtemp(prefix=prefix, **kw)
        fakes.journal.append(f"make {'tmpdir' if prefix.startswith('htmp-') else 'workdir'}")
        return path

    def rmtree(path: Any, ignore_errors: bool = False, **kw: Any) -> None:
        name = Path(path).name
        fakes.journal.append("rm tmpdir" if name.startswith("htmp-") else "rm xfer" if name == "xfer" else "rm workdir")
        real_rmtree(path, ignore_errors=ignore_errors, **kw)

    def make_xfer_dir(workdir: Path) -> Path:
        fakes.step("xfer", "make xfer")
        return _mkdir(tmp_path / "shm" / "xfer")

    def checkpoint(card: Any, python: str) -> Path:
        fakes.step("checkpoint")
        return tmp_path

    monkeypatch.setattr(cellrun, "RUNTIMES", type("R", (), {"get": staticmethod(lambda name: FakeAdapter())})())
    monkeypatch.setattr(leases, "PortLease", FakePort)
    monkeypatch.setattr(cellrun, "ServerProcess", FakeServer)
    monkeypatch.setattr(cellrun, "resolve_checkpoint", checkpoint)
    monkeypatch.setattr(cellrun, "make_xfer_dir", make_xfer_dir)
    monkeypatch.setattr(cellrun, "remove_xfer_dir", lambda path: rmtree(path, ignore_errors=True))
    monkeypatch.setattr(cellrun, "share_directory", lambda client, path: True)
    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    return fakes


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def pending_boot(fakes: Fakes, tmp_path: Path, hook: FakeHook | None = None) -> cellrun.PendingBoot:
    options = default_options(tmp_path / "run")
    return cellrun.PendingBoot(CELL, None, options, lease=FakeLease(fakes), events=options.out_dir / "events.jsonl",  # type: ignore[arg-type]
                               hook=hook)


def stop_lines(tmp_path: Path) -> list[str]:
    path = tmp_path / "run" / "events.jsonl"
    return [json.loads(line)["event"] for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_each_step_releases_what_was_acquired_before_it_newest_first(tmp_path, monkeypatch, step):
    fakes = install(monkeypatch, tmp_path)
    fakes.fail = step
    hook = FakeHook(fakes)
    with pytest.raises(Boom, match=step):
        pending = pending_boot(fakes, tmp_path, hook)
        pending.start()
        pending.finish()
    taken = [e for e in fakes.journal if e in ACQUIRED]
    released = [e for e in fakes.journal if e in ACQUIRED.values()]
    assert taken == ["lease cards", *(ACQUIRES[s] for s in STEPS[:STEPS.index(step)] if s in ACQUIRES)]
    if STEPS.index(step) > STEPS.index("ready"):  # the port goes back as soon as the runtime answers (it holds it then)
        assert released[0] == "release port" and fakes.journal.index("release port") < fakes.journal.index("stop process")
        released = released[1:]
        taken.remove("lease port")
    if "make xfer" in taken:  # handed to the runtime: its place is below the process, so it goes once the process stopped
        taken.remove("make xfer")
        taken.insert(taken.index("start process"), "make xfer")
    assert released == [ACQUIRED[e] for e in reversed(taken)], fakes.journal
    assert fakes.journal[-1] == "hook stopped abandoned" and fakes.journal.count("hook stopped abandoned") == 1
    assert stop_lines(tmp_path) == ["boot", "stopped"]


def test_a_failing_stop_still_releases_the_cards_and_logs_stopped_once(tmp_path, monkeypatch):
    fakes = install(monkeypatch, tmp_path)
    fakes.stop_raises = True
    hook = FakeHook(fakes)
    pending = pending_boot(fakes, tmp_path, hook)
    pending.start()
    rt = pending.finish()
    with pytest.raises(OSError, match="stop failed"):
        cellrun.shutdown(rt)
    tail = fakes.journal[fakes.journal.index("stop process"):]
    assert tail == ["stop process", "rm xfer", "rm tmpdir", "rm workdir", "release cards", "hook stopped done"]
    assert stop_lines(tmp_path) == ["boot", "stopped"]
    cellrun.shutdown(rt)  # a second shutdown gives back nothing twice
    assert stop_lines(tmp_path) == ["boot", "stopped"] and hook.calls.count(("stopped", "done")) == 1


def test_abandon_logs_one_stopped_line_and_calls_the_hook_once(tmp_path, monkeypatch):
    fakes = install(monkeypatch, tmp_path)
    hook = FakeHook(fakes)
    pending = pending_boot(fakes, tmp_path, hook)
    pending.start()
    pending.abandon()
    pending.abandon()
    assert stop_lines(tmp_path) == ["boot", "stopped"]
    assert hook.calls == [("booting", 1), ("stopped", "abandoned")]
    assert fakes.journal == ["lease cards", "lease port", "make workdir", "make tmpdir", "start process",
                             "stop process", "rm tmpdir", "rm workdir", "release port", "release cards",
                             "hook stopped abandoned"]


def test_a_cell_that_ran_logs_one_stopped_line_and_calls_the_hook_once_with_done(tmp_path, monkeypatch):
    fakes = install(monkeypatch, tmp_path)
    hook = FakeHook(fakes)
    pending = pending_boot(fakes, tmp_path, hook)
    pending.start()
    with cellrun.cell_runtime(CELL, None, pending.options, None, pending, hook=hook) as rt:  # type: ignore[arg-type]
        assert rt.xfer_dir is not None and "release cards" not in fakes.journal
        assert stop_lines(tmp_path) == ["boot"]
    assert stop_lines(tmp_path) == ["boot", "stopped"]
    assert hook.calls == [("booting", 1), ("ready", CELL.id), ("stopped", "done")]
    assert fakes.journal[-6:] == ["stop process", "rm xfer", "rm tmpdir", "rm workdir", "release cards",
                                  "hook stopped done"]


def test_a_port_taken_meanwhile_gives_back_that_attempt_before_the_next(tmp_path, monkeypatch):
    fakes = install(monkeypatch, tmp_path)
    fakes.busy_ports = 1
    hook = FakeHook(fakes)
    pending = pending_boot(fakes, tmp_path, hook)
    pending.start()
    rt = pending.finish()
    first = ["lease port", "make workdir", "make tmpdir", "start process"]
    assert fakes.journal[1:9] == [*first, "stop process", "rm tmpdir", "rm workdir", "release port"]
    assert fakes.journal[9:13] == first and hook.calls[:2] == [("booting", 1), ("booting", 2)]
    cellrun.shutdown(rt)
    assert fakes.journal.count("stop process") == 2 and fakes.journal.count("release cards") == 1


def test_a_port_taken_every_time_gives_up_after_the_tries_and_holds_nothing(tmp_path, monkeypatch):
    fakes = install(monkeypatch, tmp_path)
    fakes.busy_ports = cellrun.PORT_TRIES
    pending = pending_boot(fakes, tmp_path, FakeHook(fakes))
    pending.start()
    with pytest.raises(RuntimeStartError, match="port"):
        pending.finish()
    assert fakes.journal.count("lease port") == fakes.journal.count("release port") == cellrun.PORT_TRIES
    assert fakes.journal.count("make workdir") == fakes.journal.count("rm workdir") == cellrun.PORT_TRIES
    assert fakes.journal[-2:] == ["release cards", "hook stopped abandoned"] and stop_lines(tmp_path) == ["boot", "stopped"]


def test_no_free_card_launches_nothing_and_logs_nothing(tmp_path, monkeypatch):
    fakes = install(monkeypatch, tmp_path)
    hook = FakeHook(fakes)
    options = default_options(tmp_path / "run")
    inv = DeviceInventory.simulate("npu", 1)
    holder = leases.acquire("npu", 1, 1, "other", lease_dir=options.out_dir / ".leases")
    try:
        assert cellrun.launch(CELL, None, options, inv, wait_for_cards=False, hook=hook) is None  # type: ignore[arg-type]
    finally:
        holder.release()
    assert fakes.journal == [] and hook.calls == [] and stop_lines(tmp_path) == []
    pending = cellrun.launch(CELL, None, options, inv, wait_for_cards=False, hook=hook)  # type: ignore[arg-type]
    assert pending is not None and pending.visible == (0,)
    pending.abandon()
    assert stop_lines(tmp_path) == ["acquire", "boot", "stopped", "release"]  # the cards outlive the process


def test_boot_ahead_close_stops_every_real_pending_boot_even_when_one_fails(tmp_path, monkeypatch):
    fakes = install(monkeypatch, tmp_path)
    options = default_options(tmp_path / "run")
    ahead = BootAhead(2, hook=FakeHook(fakes))
    for model in "ab":
        assert ahead.start(Cell("hf", "cpu", model, "none"), None, options, None)  # type: ignore[arg-type]
    fakes.stop_raises = True
    with pytest.raises(OSError, match="stop failed"):
        ahead.close()
    assert ahead.pending == {} and fakes.journal.count("stop process") == 2
    assert stop_lines(tmp_path) == ["boot", "boot", "stopped", "stopped"]
    assert fakes.journal.count("hook stopped abandoned") == 2


def test_boot_without_a_lease_logs_no_lines_and_shutdown_calls_the_hook(tmp_path, monkeypatch):
    fakes = install(monkeypatch, tmp_path)
    hook = FakeHook(fakes)
    rt = cellrun.boot(Cell("hf", "cpu", "m", "none"), None, default_options(tmp_path / "run"), visible=(3,),  # type: ignore[arg-type]
                      hook=hook)
    assert rt.cards == (3,) and stop_lines(tmp_path) == []
    cellrun.shutdown(rt)
    assert hook.calls[-1] == ("stopped", "done") and "release cards" not in fakes.journal

