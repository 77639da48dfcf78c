"""Runtime adapters, one module each, behind one registry.

Installed packages add adapters through the ``harness.runtimes`` entry-point group (docs/extending.md).
"""
from __future__ import annotations

from harness.registry import Registry
from harness.runtimes.base import Capabilities, RuntimeAdapter

RUNTIMES: Registry[RuntimeAdapter] = Registry("runtime", protocol=RuntimeAdapter, group="harness.runtimes",
                                                what="runtime adapter", instantiate=True)
RUNTIMES.register("hf", "harness.runtimes.hf:ADAPTER", aliases=("transformers",))
RUNTIMES.register("sglang", "harness.runtimes.sglang:ADAPTER")
RUNTIMES.register("vllm", "harness.runtimes.vllm:ADAPTER", aliases=("vllm-cpu",))


def all_offload_modes() -> list[str]:
    """The union of every registered runtime's offload modes, in registration order."""
    modes: list[str] = []
    for name in RUNTIMES:
        modes += [m for m in RUNTIMES.get(name).offload_modes if m not in modes]
    return modes


def capabilities_of(runtime: str) -> Capabilities | None:
    """What the registered runtime declares it can do; None for a runtime that is not registered."""
    return RUNTIMES.get(runtime).capabilities if runtime in RUNTIMES else None
