"""The contract every runtime adapter fulfils."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, final

from harness.config.cards import ModelCard
from harness.config.matrix import Cell

if TYPE_CHECKING:  # the client (requests, numpy) is imported where a runtime is asked something
    from harness.runtimes.client import RuntimeClient

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


@final
@dataclasses.dataclass(frozen=True)
class WeightDigests:
    """A runtime's per-tensor weight checksums (SGLang's ``/weights_checker``), and where the harness can
    rebuild them from the checkpoint: sha256 everywhere but ``other_hash_devices``, per rank shard.

    >>> WeightDigests(other_hash_devices=("cuda",)).why_not("npu", 1) is None
    True
    >>> WeightDigests().why_not("cpu", 2)
    '/weights_checker digests are per tp rank shard; they are rebuilt from the checkpoint at tp 1 only (tp=2)'
    """

    endpoint: str = "/weights_checker"
    other_hash_devices: tuple[str, ...] = ()  # devices where the runtime hashes with ``other_hash``, not sha256
    other_hash: str = "another kernel"

    def why_not(self, device: str, tp: int) -> str | None:
        """Why digests of a cell on ``device`` at ``tp`` cannot be rebuilt from the checkpoint, or None."""
        if device in self.other_hash_devices:
            return (f"on {device} the runtime's {self.endpoint} hashes with {self.other_hash}, not sha256: "
                    "its digests cannot be reproduced from the checkpoint")
        if tp > 1:
            return (f"{self.endpoint} digests are per tp rank shard; they are rebuilt from the checkpoint at tp 1 only "
                    f"(tp={tp})")
        return None


@final
@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a runtime can show the checks: checks, the boot and the report read these, never the runtime's name.

    ``weights_by_name``: the model classes whose tensors the runtime returns by name, None for every one;
    ``weight_digests``: its per-tensor checksums, None when it has none; ``weight_layout``: the layout
    table (harness/numerics/layouts/) that maps its tensors to the checkpoint's; ``no_layer_states``:
    why its running server gives no per-layer hidden states (empty: it answers ``/layer_states``, or
    nothing is known); ``title``: how a reason names the runtime ("SGLang's Qwen3MoeForCausalLM ...").
    """

    title: str
    offload_modes: tuple[str, ...] = ("none",)
    weight_layout: str = "transformers"
    weights_by_name: frozenset[str] | None = None
    weight_digests: WeightDigests | None = None
    no_layer_states: str = ""

    def reads_weights_of(self, architecture: str | None) -> bool:
        """Whether the runtime returns this model class's tensors by name."""
        return self.weights_by_name is None or architecture in self.weights_by_name

    def why_weights_unreadable(self, architecture: str | None, device: str, tp: int) -> str | None:
        """Why no tensor of this cell can be compared, by value or by digest, or None when some can.

        >>> caps = Capabilities("X", weights_by_name=frozenset({"A"}))
        >>> caps.why_weights_unreadable("A", "cpu", 1) is None
        True
        >>> caps.why_weights_unreadable("B", "cpu", 1)
        "X's B does not implement /get_weights_by_name (only A do), and it publishes no weight digests"
        """
        if self.reads_weights_of(architecture):
            return None
        only = ", ".join(sorted(self.weights_by_name or ()))
        if self.weight_digests is None:
            return (f"{self.title}'s {architecture} does not implement /get_weights_by_name (only {only} do), "
                    "and it publishes no weight digests")
        blocked = self.weight_digests.why_not(device, tp)  # else its tensors are compared by digest
        if blocked:
            return f"{self.title}'s {architecture} does not implement /get_weights_by_name (only {only} do), and {blocked}"
        return None


class RuntimeAdapter(Protocol):
    """A serving runtime the harness can boot, query and fingerprint."""

    name: str
    offload_modes: tuple[str, ...]
    default_boot_timeout_s: float
    capabilities: Capabilities

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


class AdapterDefaults:
    """The defaults the built-in adapters share: no check-specific N/A rule of their own (a check's rules
    read the adapter's ``capabilities``, harness/checks/meaning.py)."""

    # a runtime that declares nothing: every model's tensors by name, in the checkpoint's layout, no digests
    capabilities: Capabilities = Capabilities("this runtime")

    @property
    def weight_layout(self) -> str:
        """The layout table of the runtime's tensors (what the boot hands the checks)."""
        return self.capabilities.weight_layout

    def check_na_reason(self, check: str, cell: Cell, card: ModelCard) -> str | None:
        return None
