"""One cell's runtime: resolve the checkpoint, lease cards and a port, boot once, tear down, release."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, final

from harness import leases
from harness.cards import BuilderSource, ModelCard
from harness.checks import CHECKS, CheckContext, CheckResult
from harness.client import RuntimeClient
from harness.devices import DeviceInventory
from harness.errors import HarnessError, RuntimeRequestError, RuntimeStartError
from harness.lifecycle import ServerProcess, argv_for_display, tail
from harness.matrix import Cell
from harness.options import HarnessOptions
from harness.runtimes import RUNTIMES
from harness.runtimes.base import LaunchContext

HOST = "127.0.0.1"
PORT_TRIES = 3
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

    @property
    def log_path(self) -> Path:
        return self.server.spec.log_path


def resolve_checkpoint(card: ModelCard, python: str) -> Path:
    """Where the card's weights are: built (and cached) for zoo models, found on disk otherwise."""
    if isinstance(card.source, BuilderSource):
        from models.zoo import BuildSpec, ensure_built

        spec = BuildSpec(arch=card.source.arch, facts=card.facts_path, seed=card.source.seed)
        return ensure_built(card.name, spec, python)
    path = card.source.resolve()
    if path is None:
        raise HarnessError(card.unavailable_reason() or f"model {card.name}: checkpoint not found")
    return path


@contextlib.contextmanager
def cell_runtime(cell: Cell, card: ModelCard, options: HarnessOptions, inv: DeviceInventory | None) -> Iterator[RunningRuntime]:
    """Lease the cell's cards, boot its runtime, yield it; always tear down and release."""
    events = options.out_dir / "events.jsonl"
    lease = None
    if inv is not None and cell.device != "cpu":
        lease_dir = options.out_dir / ".leases" if inv.simulated else (options.lease_dir or leases.DEFAULT_LEASE_DIR)
        lease = leases.acquire(cell.device, cell.tp, inv.count, cell.id, lease_dir=lease_dir, events=events)
    try:
        leases.log_event(events, "boot", cell.id, cell.device, lease.cards if lease else ())
        rt = boot(cell, card, options, visible=lease.cards if lease else None, simulated=bool(inv and inv.simulated))
        try:
            yield rt
        finally:
            shutdown(rt)
            leases.log_event(events, "stopped", cell.id, cell.device, lease.cards if lease else ())
    finally:
        if lease is not None:
            lease.release()


def boot(cell: Cell, card: ModelCard, options: HarnessOptions, visible: tuple[int, ...] | None = None,
         simulated: bool = False) -> RunningRuntime:
    """Start the cell's runtime and wait until it answers; a port taken meanwhile is retried."""
    for attempt in range(1, PORT_TRIES + 1):
        port = leases.PortLease(HOST, lease_dir=options.lease_dir or leases.DEFAULT_LEASE_DIR)
        try:
            return _boot_on(port.port, cell, card, options, visible, simulated)
        except RuntimeStartError as exc:
            if attempt == PORT_TRIES or not any(s in exc.log_tail.lower() for s in _PORT_IN_USE):
                raise
        finally:
            port.release()
    raise AssertionError("unreachable")


def _boot_on(port: int, cell: Cell, card: ModelCard, options: HarnessOptions, visible: tuple[int, ...] | None,
             simulated: bool) -> RunningRuntime:
    adapter = RUNTIMES.get(cell.runtime)
    python = options.python_for(cell.runtime)
    checkpoint = resolve_checkpoint(card, python)
    ropts = options.runtime_options(cell.runtime)
    workdir = Path(tempfile.mkdtemp(prefix=f"harness-{cell.id}-"))
    ctx = LaunchContext(
        cell=cell, card=card, checkpoint=checkpoint, python=python, host=HOST, port=port, workdir=workdir,
        log_path=options.out_dir / "logs" / f"{cell.id}.log",
        boot_timeout_s=options.boot_timeout_s or ropts.boot_timeout or adapter.default_boot_timeout_s,
        base_env={**_base_env(), "HARNESS_CELL": cell.id, "HARNESS_OUT": str(options.out_dir)},
        visible_devices=visible, workarounds=_workarounds_for(cell.runtime, options.workarounds),
        simulated=simulated, extra_args=ropts.args, extra_env=ropts.env,
    )
    spec = adapter.launch(ctx)
    server = ServerProcess(spec)
    try:
        boot_s = server.start()
    except RuntimeStartError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    client = adapter.client(f"http://{HOST}:{port}", cell.id)
    return RunningRuntime(
        cell=cell, card=card, checkpoint=checkpoint, server=server, client=client,
        weight_layout=getattr(adapter, "weight_layout", "transformers"), boot_s=round(boot_s, 3),
        command=argv_for_display(spec.argv), fingerprint=adapter.fingerprint(client.server_info()), workdir=workdir,
        workarounds=ctx.workarounds, simulated=simulated, cards=visible, options=options,
    )


def shutdown(rt: RunningRuntime) -> None:
    """Stop the whole process tree and remove the cell's scratch directory."""
    try:
        rt.server.stop()
    finally:
        shutil.rmtree(rt.workdir, ignore_errors=True)


def run_check(rt: RunningRuntime, check_name: str) -> CheckResult:
    """Run one check; a request failure says whether the runtime process died and how."""
    check = CHECKS.get(check_name)
    ctx = CheckContext(cell=rt.cell, card=rt.card, checkpoint=rt.checkpoint, client=rt.client,
                       weight_layout=rt.weight_layout, options=rt.options)
    try:
        return check.run(ctx)
    except RuntimeRequestError as exc:
        died = rt.server.exit_description(wait_s=3.0)  # a connection drops a moment before the exit is seen
        detail = exc.detail + (f"; the runtime process died ({died})" if died else "")
        raise RuntimeRequestError(rt.cell.id, detail, rt.log_path, tail(rt.log_path)) from exc


def _workarounds_for(runtime: str, names: tuple[str, ...]) -> tuple[str, ...]:
    if not names:
        return ()
    from harness.workarounds import WORKAROUNDS

    return tuple(n for n in names if WORKAROUNDS.get(n).runtime == runtime)


def _base_env() -> dict[str, str]:
    """The harness's environment minus variables that would leak into or confuse a runtime."""
    drop = ("PYTEST_", "COV_CORE_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}
