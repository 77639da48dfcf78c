"""One cell's runtime: resolve the checkpoint, lease cards and a port, boot once, tear down, release."""
from __future__ import annotations

import contextlib
import dataclasses
import getpass
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, final

from harness.boot import leases
from harness.boot.devices import DeviceInventory
from harness.boot.lifecycle import ServerProcess, argv_for_display
from harness.boot.xferdir import make_xfer_dir, remove_xfer_dir
from harness.config.cards import BuilderSource, ModelCard
from harness.config.matrix import Cell
from harness.config.options import HarnessOptions
from harness.errors import HarnessError, RuntimeStartError
from harness.numerics.tensorwire import share_directory
from harness.runtimes import RUNTIMES
from harness.runtimes.base import LaunchContext
from harness.runtimes.client import RuntimeClient

HOST = "127.0.0.1"
PORT_TRIES = 3
TMP_LINK = "runtime-tmp"  # in a cell's scratch dir: the runtime's TMPDIR (see _runtime_tmpdir)
_PORT_IN_USE = ("address already in use", "errno 98", "eaddrinuse")
StopReason = Literal["done", "abandoned"]  # pytest_harness_runtime_stopped's reason: it ran, or it never got to


@final
@dataclasses.dataclass(frozen=True)
class RunningRuntime:
    """A booted runtime of one cell, shared by all of that cell's checks."""

    cell: Cell
    card: ModelCard
    checkpoint: Path
    server: ServerProcess
    client: RuntimeClient
    weight_layout: str
    boot_s: float
    command: str
    fingerprint: dict[str, Any]
    workdir: Path
    workarounds: tuple[str, ...] = ()
    simulated: bool = False
    cards: tuple[int, ...] | None = None
    options: HarnessOptions | None = None
    xfer_dir: Path | None = None  # tmpfs directory for tensors in shared memory (harness/boot/xferdir.py)
    resources: contextlib.ExitStack = dataclasses.field(kw_only=True, repr=False, compare=False)  # what its boot
    # holds (PendingBoot): process, dirs, port, cards; ``shutdown`` closes it

    @property
    def log_path(self) -> Path:
        return self.server.spec.log_path


def resolve_checkpoint(card: ModelCard, python: str) -> Path:
    """Where the card's weights are: built (and cached) for zoo models, found on disk otherwise."""
    if isinstance(card.source, BuilderSource):
        from harness.models.zoo import BuildSpec, ensure_built

        spec = BuildSpec(arch=card.source.arch, facts=card.facts_path, seed=card.source.seed)
        return ensure_built(card.name, spec, python)
    path = card.source.resolve()
    if path is None:
        raise HarnessError(card.unavailable_reason() or f"model {card.name}: checkpoint not found")
    return path


class BootResources(contextlib.ExitStack):
    """An ExitStack that notes when its closing began (the stopped hook reports how long it took)."""

    began: float | None = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        self.began = time.monotonic()
        return bool(super().__exit__(exc_type, exc, tb))


@final
class PendingBoot:
    """A runtime launched but maybe not ready yet; it owns everything the boot holds.

    Each acquisition pushes its own release onto ``resources`` (one ExitStack), so closing it gives
    everything back newest first, each release running even when an earlier one raised. Pushed::

        stopped hook, cards, "stopped" line, [port, scratch dir, runtime TMPDIR, transfer dir, process]

    so the process stops first and the cards go after it, then the hook says so. The bracket is one
    launch attempt's own stack: a port taken meanwhile closes it before the next attempt. ``abandon``
    closes the stack (reason "abandoned"); ``finish`` hands it to the RunningRuntime, whose
    ``shutdown`` closes it (reason "done"). A boot begins with ``start`` (the "boot" line, the launch).
    """

    def __init__(self, cell: Cell, card: ModelCard, options: HarnessOptions, *, lease: leases.Lease | None = None,
                 simulated: bool = False, devices: tuple[int, ...] | None = None, events: Path | None = None,
                 log_name: str | None = None, hook: Any = None) -> None:
        self.cell, self.card, self.options, self.simulated = cell, card, options, simulated
        self.events = events  # events.jsonl: the "boot" and "stopped" lines (None: not logged)
        self.log_name = log_name  # default <cell id>.log
        self.hook = hook  # pytest's hook relay (config.hook): the pytest_harness_runtime_* hooks are called on it
        self.visible = lease.cards if lease is not None else devices  # the cards the runtime sees
        self.reason: StopReason = "abandoned"  # "done" once handed to a RunningRuntime
        self.ctx: LaunchContext | None = None
        self.server: ServerProcess | None = None
        self.port: leases.PortLease | None = None
        self.resources = BootResources()
        self._attempt: contextlib.ExitStack | None = None  # this launch attempt's port, dirs and process
        self._given: contextlib.ExitStack | None = None  # what the runtime is handed once up: released after it stops
        self.resources.callback(self._announce_stopped)
        if lease is not None:  # the boot owns the lease from here on
            self.resources.callback(lease.release)

    def start(self) -> None:
        """Log "boot" (its "stopped" line is logged when the boot is given back) and launch."""
        with self._abandoning():
            self._log("boot")
            self.resources.callback(self._log, "stopped")
            self._launch(1)

    def finish(self) -> RunningRuntime:
        """Wait until the launched runtime answers and hand everything it holds to a RunningRuntime."""
        with self._abandoning():
            boot_s = self._wait_ready()
            assert self.port is not None
            self.port.release()  # the runtime holds the port itself now (the stack's release is then a no-op)
            rt = self._running(boot_s)
            if self.hook is not None:
                self.hook.pytest_harness_runtime_ready(runtime=rt)
            self.reason = "done"
        return rt

    def abandon(self) -> None:
        """Give back everything a launched (or half-launched) boot holds: process, port, dirs, cards."""
        self.resources.close()

    @contextlib.contextmanager
    def _abandoning(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.abandon()
            raise

    def _log(self, event: str) -> None:
        leases.log_event(self.events, event, self.cell.id, self.cell.device, self.visible or ())

    def _announce_stopped(self) -> None:
        if self.hook is not None:
            began = self.resources.began or time.monotonic()
            self.hook.pytest_harness_runtime_stopped(cell=self.cell, reason=self.reason,
                                                     seconds=round(time.monotonic() - began, 3))

    def _launch(self, attempt: int) -> None:
        """Lease a port, make the scratch dirs and start the process, each released by this attempt's stack."""
        cell, options = self.cell, self.options
        self._attempt = stack = self.resources.enter_context(contextlib.ExitStack())
        self.port = port = leases.PortLease(HOST, lease_dir=options.lease_dir or leases.DEFAULT_LEASE_DIR)
        stack.callback(port.release)
        adapter = RUNTIMES.get(cell.runtime)
        python = options.python_for(cell.runtime)
        checkpoint = resolve_checkpoint(self.card, python)
        workdir = Path(tempfile.mkdtemp(prefix=f"harness-{cell.id}-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        runtime_tmp = _runtime_tmpdir(workdir, stack)
        self.ctx = self._context(adapter, checkpoint, python, port.port, workdir, runtime_tmp)
        self._given = stack.enter_context(contextlib.ExitStack())
        self.server = server = ServerProcess(adapter.launch(self.ctx))
        stack.callback(server.stop)
        if self.hook is not None:
            self.hook.pytest_harness_runtime_booting(cell=cell, command=argv_for_display(server.spec.argv),
                                                     attempt=attempt)
        server.launch()

    def _context(self, adapter: Any, checkpoint: Path, python: str, port: int, workdir: Path,
                 runtime_tmp: dict[str, str]) -> LaunchContext:
        cell, options = self.cell, self.options
        ropts = options.runtime_options(cell.runtime)
        return LaunchContext(
            cell=cell, card=self.card, checkpoint=checkpoint, python=python, host=HOST, port=port, workdir=workdir,
            log_path=options.out_dir / "logs" / (self.log_name or f"{cell.id}.log"),
            boot_timeout_s=options.boot_timeout_s or ropts.boot_timeout or adapter.default_boot_timeout_s,
            base_env={**_base_env(), "HARNESS_CELL": cell.id, "HARNESS_OUT": str(options.out_dir), **runtime_tmp},
            visible_devices=self.visible,
            workarounds=_workarounds_for(cell.runtime, options.workarounds),
            simulated=self.simulated, extra_args=ropts.args, extra_env=ropts.env,
        )

    def _wait_ready(self) -> float:
        """Seconds to readiness; a port taken meanwhile gives back that attempt and launches on another."""
        for attempt in range(1, PORT_TRIES + 1):
            assert self.server is not None and self._attempt is not None
            try:
                return self.server.wait_ready()
            except RuntimeStartError as exc:
                if attempt == PORT_TRIES or not any(s in exc.log_tail.lower() for s in _PORT_IN_USE):
                    raise
                self._attempt.close()  # its process (already stopped), scratch dirs and port
                self._launch(attempt + 1)
        raise AssertionError("unreachable")

    def _running(self, boot_s: float) -> RunningRuntime:
        ctx, server, cell = self.ctx, self.server, self.cell
        assert ctx is not None and server is not None and self._given is not None
        adapter = RUNTIMES.get(cell.runtime)
        client = adapter.client(f"http://{HOST}:{ctx.port}", cell.id)
        info = client.server_info()
        fingerprint = adapter.fingerprint(info)
        xfer = make_xfer_dir(ctx.workdir) if "region" in (info.get("weight_transfer") or ()) else None
        if xfer is not None:
            self._given.callback(remove_xfer_dir, xfer)
            if not share_directory(client, xfer):  # a client without a TensorFetcher
                remove_xfer_dir(xfer)
                xfer = None
        return RunningRuntime(
            cell=cell, card=self.card, checkpoint=ctx.checkpoint, server=server, client=client,
            weight_layout=adapter.capabilities.weight_layout, boot_s=round(boot_s, 3),
            command=argv_for_display(server.spec.argv), fingerprint=fingerprint,
            workdir=ctx.workdir, workarounds=ctx.workarounds, simulated=self.simulated, cards=ctx.visible_devices,
            options=self.options, xfer_dir=xfer, resources=self.resources,
        )


@contextlib.contextmanager
def cell_runtime(cell: Cell, card: ModelCard, options: HarnessOptions, inv: DeviceInventory | None,
                 pending: PendingBoot | None = None, hook: Any = None) -> Iterator[RunningRuntime]:
    """Lease the cell's cards, boot its runtime (or finish the boot ``pending`` began), yield it;
    always tear down and release."""
    if pending is None:
        pending = launch(cell, card, options, inv, hook=hook)
        assert pending is not None  # launch waits for cards
    rt = pending.finish()
    with rt.resources:
        yield rt


def launch(cell: Cell, card: ModelCard, options: HarnessOptions, inv: DeviceInventory | None,
           wait_for_cards: bool = True, hook: Any = None) -> PendingBoot | None:
    """Lease the cell's cards and a port and start its runtime without waiting for it.

    With ``wait_for_cards=False`` a device whose cards are all taken gives None at once (used to
    boot a cell ahead only where a card is free).
    """
    events = options.out_dir / "events.jsonl"
    lease = None
    if inv is not None and cell.device != "cpu":
        lease_dir = leases.card_lease_dir(options.out_dir, options.lease_dir, inv.simulated)
        try:
            lease = leases.acquire(cell.device, cell.tp, inv.count, cell.id, lease_dir=lease_dir, events=events,
                                   timeout_s=3600.0 if wait_for_cards else 0.0)
        except leases.LeaseTimeout:
            if wait_for_cards:
                raise
            return None
    pending = PendingBoot(cell, card, options, lease=lease, simulated=bool(inv and inv.simulated), events=events,
                          hook=hook)
    pending.start()
    return pending


def boot(cell: Cell, card: ModelCard, options: HarnessOptions, visible: tuple[int, ...] | None = None,
         simulated: bool = False, log_name: str | None = None, hook: Any = None) -> RunningRuntime:
    """Start the cell's runtime on ``visible`` cards (no lease taken) and wait until it answers;
    ``shutdown`` gives back what it holds."""
    pending = PendingBoot(cell, card, options, simulated=simulated, devices=visible, log_name=log_name, hook=hook)
    pending.start()
    return pending.finish()


def shutdown(rt: RunningRuntime) -> None:
    """Stop the whole process tree, then release what its boot held (dirs, port, cards); safe to call twice."""
    rt.resources.close()


def _workarounds_for(runtime: str, names: tuple[str, ...]) -> tuple[str, ...]:
    if not names:
        return ()
    from harness.runtimes.workarounds import WORKAROUNDS

    return tuple(n for n in names if WORKAROUNDS.get(n).runtime == runtime)


def _runtime_tmpdir(workdir: Path, resources: contextlib.ExitStack) -> dict[str, str]:
    """The runtime's TMPDIR: a short directory of its own (SGLang's ZMQ sockets, vLLM's rendezvous
    files and every tempfile land there, not in /tmp), linked from ``workdir``; its removal goes on
    ``resources``. Short because a Unix socket path must fit in 108 bytes; torch's compile cache
    keeps its usual place (``/tmp/torchinductor_<user>``), so boots stay warm."""
    short = Path(tempfile.mkdtemp(prefix="htmp-"))
    resources.callback(shutil.rmtree, short, ignore_errors=True)
    (workdir / TMP_LINK).symlink_to(short)
    inductor = Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}"
    return {"TMPDIR": str(short), "TORCHINDUCTOR_CACHE_DIR": os.environ.get("TORCHINDUCTOR_CACHE_DIR", str(inductor))}


def remove_workdir(workdir: Path) -> None:
    """Remove a cell's scratch directory and the runtime TMPDIR it links to."""
    link = workdir / TMP_LINK
    if link.is_symlink():
        shutil.rmtree(os.readlink(link), ignore_errors=True)
    shutil.rmtree(workdir, ignore_errors=True)


def _base_env() -> dict[str, str]:
    """The harness's environment minus variables that would leak into or confuse a runtime."""
    drop = ("PYTEST_", "COV_CORE_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}
