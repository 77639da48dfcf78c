"""One cell's runtime: resolve the checkpoint, boot it once, hand it to every check, tear it down."""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, final

from harness.cards import BuilderSource, ModelCard
from harness.checks import CHECKS, CheckContext, CheckResult
from harness.client import RuntimeClient
from harness.errors import HarnessError, RuntimeRequestError, RuntimeStartError
from harness.lifecycle import ServerProcess, argv_for_display, free_port, tail
from harness.matrix import Cell
from harness.options import HarnessOptions
from harness.runtimes import RUNTIMES
from harness.runtimes.base import LaunchContext

HOST = "127.0.0.1"


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


def boot(cell: Cell, card: ModelCard, options: HarnessOptions, visible: tuple[int, ...] | None = None) -> RunningRuntime:
    """Start the cell's runtime and wait until it answers; raises RuntimeStartError on failure."""
    adapter = RUNTIMES.get(cell.runtime)
    python = options.python_for(cell.runtime)
    checkpoint = resolve_checkpoint(card, python)
    log_path = options.out_dir / "logs" / f"{cell.id}.log"
    workdir = Path(tempfile.mkdtemp(prefix=f"harness-{cell.id}-"))
    ctx = LaunchContext(
        cell=cell, card=card, checkpoint=checkpoint, python=python, host=HOST, port=free_port(HOST),
        workdir=workdir, log_path=log_path,
        boot_timeout_s=options.boot_timeout_s or adapter.default_boot_timeout_s,
        base_env={**_base_env(), "HARNESS_CELL": cell.id, "HARNESS_OUT": str(options.out_dir)},
        visible_devices=visible, workarounds=options.workarounds,
    )
    spec = adapter.launch(ctx)
    server = ServerProcess(spec)
    try:
        boot_s = server.start()
    except RuntimeStartError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    client = adapter.client(f"http://{HOST}:{ctx.port}", cell.id)
    return RunningRuntime(
        cell=cell, card=card, checkpoint=checkpoint, server=server, client=client,
        weight_layout=getattr(adapter, "weight_layout", "transformers"), boot_s=round(boot_s, 3),
        command=argv_for_display(spec.argv), fingerprint=adapter.fingerprint(client.server_info()), workdir=workdir,
        workarounds=ctx.workarounds,
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
                       weight_layout=rt.weight_layout)
    try:
        return check.run(ctx)
    except RuntimeRequestError as exc:
        died = rt.server.exit_description()
        detail = exc.detail + (f"; the runtime process died ({died})" if died else "")
        raise RuntimeRequestError(rt.cell.id, detail, rt.log_path, tail(rt.log_path)) from exc


def _base_env() -> dict[str, str]:
    """The harness's environment minus variables that would leak into or confuse a runtime."""
    drop = ("PYTEST_", "COV_CORE_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}
