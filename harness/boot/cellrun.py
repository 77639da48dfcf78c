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
from typing import Any, final

from harness.boot import leases
from harness.config.cards import BuilderSource, ModelCard
from harness.runtimes.client import RuntimeClient
from harness.boot.devices import DeviceInventory
from harness.errors import HarnessError, RuntimeStartError
from harness.boot.lifecycle import ServerProcess, argv_for_display
from harness.config.matrix import Cell
from harness.config.options import HarnessOptions
from harness.runtimes import RUNTIMES
from harness.runtimes.base import LaunchContext
from harness.numerics.tensorwire import share_directory
from harness.boot.xferdir import make_xfer_dir, remove_xfer_dir

HOST = "127.0.0.1"
PORT_TRIES = 3
TMP_LINK = "runtime-tmp"  # in a cell's scratch dir: the runtime's TMPDIR (see _runtime_tmpdir)
_PORT_IN_USE = ("address already in use", "errno 98", "eaddrinuse")


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


@dataclasses.dataclass
class PendingBoot:
    """A runtime launched but maybe not ready yet, with what it holds: cards, a port, a scratch dir.

    Mutable on purpose: it owns live resources until ``finish`` hands them to a RunningRuntime
    or ``abandon`` gives them back.
    """

    cell: Cell
    card: ModelCard
    options: HarnessOptions
    lease: leases.Lease | None
    simulated: bool
    port: leases.PortLease | None = None
    ctx: LaunchContext | None = None
    server: ServerProcess | None = None
    events: Path | None = None
    devices: tuple[int, ...] | None = None  # cards to make visible when no lease says which
    log_name: str | None = None  # default <cell id>.log
    hook: Any = None  # pytest's hook relay (config.hook): the pytest_harness_runtime_* hooks are called on it

    @property
    def visible(self) -> tuple[int, ...] | None:
        return self.lease.cards if self.lease else self.devices


@contextlib.contextmanager
def cell_runtime(cell: Cell, card: ModelCard, options: HarnessOptions, inv: DeviceInventory | None,
                 pending: PendingBoot | None = None, hook: Any = None) -> Iterator[RunningRuntime]:
    """Lease the cell's cards, boot its runtime (or finish the boot ``pending`` began), yield it;
    always tear down and release."""
    if pending is None:
        pending = launch(cell, card, options, inv, hook=hook)
    try:
        rt = finish(pending)
    except BaseException:
        abandon(pending)
        raise
    try:
        yield rt
    finally:
        began = time.monotonic()
        try:
            try:
                shutdown(rt)
            finally:
                leases.log_event(pending.events, "stopped", cell.id, cell.device, pending.visible or ())
        finally:
            if pending.lease is not None:
                pending.lease.release()
            _stopped(pending, "done", began)


def launch(cell: Cell, card: ModelCard, options: HarnessOptions, inv: DeviceInventory | None,
           wait_for_cards: bool = True, hook: Any = None) -> PendingBoot | None:
    """Lease the cell's cards and a port and start its runtime without waiting for it.

    With ``wait_for_cards=False`` a device whose cards are all taken gives None at once (used to
    boot a cell ahead only where a card is free).
    """
    events = options.out_dir / "events.jsonl"
    lease = None
    if inv is not None and cell.device != "cpu":
        lease_dir = options.out_dir / ".leases" if inv.simulated else (options.lease_dir or leases.DEFAULT_LEASE_DIR)
        try:
            lease = leases.acquire(cell.device, cell.tp, inv.count, cell.id, lease_dir=lease_dir, events=events,
                                   timeout_s=3600.0 if wait_for_cards else 0.0)
        except leases.LeaseTimeout:
            if wait_for_cards:
                raise
            return None
    pending = PendingBoot(cell, card, options, lease, simulated=bool(inv and inv.simulated), events=events, hook=hook)
    try:
        leases.log_event(events, "boot", cell.id, cell.device, pending.visible or ())
        _launch_on_free_port(pending)
    except BaseException:
        abandon(pending)
        raise
    return pending


def finish(pending: PendingBoot) -> RunningRuntime:
    """Wait until the launched runtime answers; a port taken meanwhile is retried on another."""
    for attempt in range(1, PORT_TRIES + 1):
        assert pending.server is not None and pending.ctx is not None
        try:
            boot_s = pending.server.wait_ready()
        except RuntimeStartError as exc:
            _release_port(pending)
            remove_workdir(pending.ctx.workdir)
            if attempt == PORT_TRIES or not any(s in exc.log_tail.lower() for s in _PORT_IN_USE):
                raise
            _launch_on_free_port(pending, attempt + 1)
            continue
        _release_port(pending)
        rt = _running(pending, boot_s)
        if pending.hook is not None:
            pending.hook.pytest_harness_runtime_ready(runtime=rt)
        return rt
    raise AssertionError("unreachable")


def abandon(pending: PendingBoot) -> None:
    """Give back everything a launched (or half-launched) boot holds: process, port, dir, cards."""
    began = time.monotonic()
    try:
        if pending.server is not None:
            pending.server.stop()
            leases.log_event(pending.events, "stopped", pending.cell.id, pending.cell.device, pending.visible or ())
    finally:
        try:
            _release_port(pending)
            if pending.ctx is not None:
                remove_workdir(pending.ctx.workdir)
        finally:
            if pending.lease is not None:
                pending.lease.release()
            _stopped(pending, "abandoned", began)


def _stopped(pending: PendingBoot, reason: str, began: float) -> None:
    if pending.hook is not None:
        pending.hook.pytest_harness_runtime_stopped(cell=pending.cell, reason=reason,
                                                    seconds=round(time.monotonic() - began, 3))


def boot(cell: Cell, card: ModelCard, options: HarnessOptions, visible: tuple[int, ...] | None = None,
         simulated: bool = False, log_name: str | None = None, hook: Any = None) -> RunningRuntime:
    """Start the cell's runtime on ``visible`` cards (no lease taken) and wait until it answers."""
    pending = PendingBoot(cell, card, options, None, simulated=simulated, devices=visible, log_name=log_name, hook=hook)
    try:
        _launch_on_free_port(pending)
        return finish(pending)
    except BaseException:
        abandon(pending)
        raise


def _launch_on_free_port(pending: PendingBoot, attempt: int = 1) -> None:
    cell, card, options = pending.cell, pending.card, pending.options
    pending.port = leases.PortLease(HOST, lease_dir=options.lease_dir or leases.DEFAULT_LEASE_DIR)
    adapter = RUNTIMES.get(cell.runtime)
    python = options.python_for(cell.runtime)
    checkpoint = resolve_checkpoint(card, python)
    ropts = options.runtime_options(cell.runtime)
    workdir = Path(tempfile.mkdtemp(prefix=f"harness-{cell.id}-"))
    runtime_tmp = _runtime_tmpdir(workdir)
    pending.ctx = LaunchContext(
        cell=cell, card=card, checkpoint=checkpoint, python=python, host=HOST, port=pending.port.port, workdir=workdir,
        log_path=options.out_dir / "logs" / (pending.log_name or f"{cell.id}.log"),
        boot_timeout_s=options.boot_timeout_s or ropts.boot_timeout or adapter.default_boot_timeout_s,
        base_env={**_base_env(), "HARNESS_CELL": cell.id, "HARNESS_OUT": str(options.out_dir), **runtime_tmp},
        visible_devices=pending.visible,
        workarounds=_workarounds_for(cell.runtime, options.workarounds),
        simulated=pending.simulated, extra_args=ropts.args, extra_env=ropts.env,
    )
    pending.server = ServerProcess(adapter.launch(pending.ctx))
    if pending.hook is not None:
        pending.hook.pytest_harness_runtime_booting(cell=cell, command=argv_for_display(pending.server.spec.argv),
                                                    attempt=attempt)
    pending.server.launch()


def _release_port(pending: PendingBoot) -> None:
    if pending.port is not None:
        pending.port.release()
        pending.port = None


def _running(pending: PendingBoot, boot_s: float) -> RunningRuntime:
    ctx, server, cell = pending.ctx, pending.server, pending.cell
    assert ctx is not None and server is not None
    adapter = RUNTIMES.get(cell.runtime)
    client = adapter.client(f"http://{HOST}:{ctx.port}", cell.id)
    info = client.server_info()
    fingerprint = adapter.fingerprint(info)
    xfer = make_xfer_dir(ctx.workdir) if "region" in (info.get("weight_transfer") or ()) else None
    if xfer is not None and not share_directory(client, xfer):  # a client without a TensorFetcher
        remove_xfer_dir(xfer)
        xfer = None
    return RunningRuntime(
        cell=cell, card=pending.card, checkpoint=ctx.checkpoint, server=server, client=client,
        weight_layout=getattr(adapter, "weight_layout", "transformers"), boot_s=round(boot_s, 3),
        command=argv_for_display(server.spec.argv), fingerprint=fingerprint,
        workdir=ctx.workdir, workarounds=ctx.workarounds, simulated=pending.simulated, cards=ctx.visible_devices,
        options=pending.options, xfer_dir=xfer,
    )


def shutdown(rt: RunningRuntime) -> None:
    """Stop the whole process tree and remove the cell's scratch and transfer directories."""
    try:
        rt.server.stop()
    finally:
        remove_workdir(rt.workdir)
        remove_xfer_dir(rt.xfer_dir)


def _workarounds_for(runtime: str, names: tuple[str, ...]) -> tuple[str, ...]:
    if not names:
        return ()
    from harness.runtimes.workarounds import WORKAROUNDS

    return tuple(n for n in names if WORKAROUNDS.get(n).runtime == runtime)


def _runtime_tmpdir(workdir: Path) -> dict[str, str]:
    """The runtime's TMPDIR: a short directory of its own (SGLang's ZMQ sockets, vLLM's rendezvous
    files and every tempfile land there, not in /tmp), linked from ``workdir`` and removed with it.
    Short because a Unix socket path must fit in 108 bytes; torch's compile cache keeps its usual
    place (``/tmp/torchinductor_<user>``), so boots stay warm."""
    short = Path(tempfile.mkdtemp(prefix="htmp-"))
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
