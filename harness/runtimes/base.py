"""The contract every runtime adapter fulfils."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, final

from harness.config.cards import ModelCard
from harness.runtimes.client import RuntimeClient
from harness.config.matrix import Cell

# The env var that selects cards of each device kind, set from a lease (one runtime per card).
VISIBLE_DEVICES_ENV = {
    "cuda": "CUDA_VISIBLE_DEVICES",
    "rocm": "HIP_VISIBLE_DEVICES",
    "npu": "ASCEND_RT_VISIBLE_DEVICES",
    "xpu": "ZE_AFFINITY_MASK",
}


@final
@dataclasses.dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to start one runtime process: declarative, no behaviour."""

    cell_id: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    ready_url: str
    log_path: Path
    boot_timeout_s: float
    cwd: Path | None = None


@final
@dataclasses.dataclass(frozen=True)
class RuntimeNeeds:
    """What a runtime's interpreter must provide (a runtime adapter's ``preflight`` attribute)."""

    imports: tuple[str, ...] = ()  # imported for real: catches a broken install, costs the import time
    present: tuple[str, ...] = ()  # only located, not imported: cheap enough for every run
    install: str = ""  # the command that installs them, quoted in the fix


@final
@dataclasses.dataclass(frozen=True)
class LaunchContext:
    """What an adapter may use to build a cell's command line and environment."""

    cell: Cell
    card: ModelCard
    checkpoint: Path
    python: str
    host: str
    port: int
    workdir: Path
    log_path: Path
    boot_timeout_s: float
    base_env: Mapping[str, str]
    visible_devices: tuple[int, ...] | None = None
    workarounds: tuple[str, ...] = ()
    simulated: bool = False
    extra_args: tuple[str, ...] = ()
    extra_env: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def run_device(self) -> str:
        """Where the runtime really runs: the CPU for simulated devices."""
        return "cpu" if self.simulated else self.cell.device

    def env(self, **extra: str) -> dict[str, str]:
        """The base environment, the visible-devices variable for the cell's device, and ``extra``."""
        env = dict(self.base_env)
        var = VISIBLE_DEVICES_ENV.get(self.cell.device)
        if var and self.visible_devices is not None:
            env[var] = ",".join(map(str, self.visible_devices))
        env.update(extra)
        env.update(self.extra_env)
        return env


class RuntimeAdapter(Protocol):
    """A serving runtime the harness can boot, query and fingerprint."""

    name: str
    offload_modes: tuple[str, ...]
    default_boot_timeout_s: float

    def na_reason(self, cell: Cell, card: ModelCard | None, *, simulated: bool = False) -> str | None:
        """Why this combination means nothing for this runtime (an N/A cell), or None.

        ``simulated``: the cell's device is simulated (--simulate-devices) and will run on the CPU.
        """

    def check_na_reason(self, check: str, cell: Cell, card: ModelCard) -> str | None:
        """Why one check cannot apply to this runtime's cell (e.g. weights not readable), or None."""

    def launch(self, ctx: LaunchContext) -> LaunchSpec:
        """The process to start for a cell."""

    def client(self, base_url: str, cell_id: str) -> RuntimeClient:
        """A client speaking this runtime's API."""

    def fingerprint(self, server_info: Mapping[str, Any]) -> dict[str, Any]:
        """Version and key settings of the running runtime, for results and the report."""
