"""What each runtime says about the mode it is really in: where its weights live, the dtype, the attention.

One reader per runtime, behind a registry; each turns the runtime's own server info into one
ModeEvidence (the mode_active check judges it, harness/checks/mode_active.py):

- hf: ``/get_server_info``'s ``placement``, read from the live model (hf_placement.py): parameter
  bytes resident per device and offloaded per store (host memory or disk), the process's memory;
- sglang: ``/server_info``'s resolved arguments (dtype, attention_backend, offload flags) and the
  scheduler's ``internal_states[0].memory_usage.weight`` (GB of weights in device memory);
- vllm: ``/server_info?config_format=json`` (dev mode): model dtype, attention backend, offload
  config; vLLM reports no weight placement or weight memory, so its offload cannot be proven.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, final

from harness.registry import Registry

GIB = 1 << 30


@final
@dataclasses.dataclass(frozen=True)
class ModeEvidence:
    """Where the weights are and what the runtime computes with, as far as the runtime says.

    ``resident_bytes``: weight bytes in the execution device's memory; ``offloaded_to``: weight bytes
    held elsewhere, per store (``{"disk": 295936}``); None where the runtime does not say.
    """

    resident_bytes: int | None = None
    offloaded_to: Mapping[str, int] | None = None
    dtypes: tuple[str, ...] = ()
    attention_backend: str | None = None
    figures: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    params: int | None = None
    offloaded_params: int | None = None
    resolution_bytes: int = 0  # the step of the runtime's memory figure (SGLang: 0.001 GB); 0 when exact

    @property
    def offloaded_bytes(self) -> int | None:
        return None if self.offloaded_to is None else sum(self.offloaded_to.values())


Reader = Callable[[Mapping[str, Any]], ModeEvidence]
READERS: Registry[Reader] = Registry("mode evidence reader")


def read_evidence(runtime: str, info: Mapping[str, Any]) -> ModeEvidence:
    """The runtime's evidence; a runtime without a reader gives an empty one (nothing proven)."""
    return READERS.get(runtime)(info) if runtime in READERS else ModeEvidence()


def hf_evidence(info: Mapping[str, Any]) -> ModeEvidence:
    placed = info.get("placement") or {}
    if not placed:
        return ModeEvidence(figures={"asked_offload_targets": info.get("offload_targets")})
    resident = {str(k): int(v) for k, v in (placed.get("resident_bytes") or {}).items()}
    return ModeEvidence(
        resident_bytes=sum(resident.values()),
        offloaded_to={str(k): int(v) for k, v in (placed.get("offloaded_bytes") or {}).items()},
        dtypes=tuple(placed.get("dtypes") or ()), attention_backend=placed.get("attention_backend"),
        params=placed.get("params"), offloaded_params=placed.get("offloaded_params"),
        figures={"resident_by_device": resident, "device_map_targets": placed.get("device_map"),
                 "asked_offload_targets": info.get("offload_targets"),
                 "offload_folder_bytes": placed.get("offload_folder_bytes"), "memory": placed.get("memory")})


def sglang_evidence(info: Mapping[str, Any]) -> ModeEvidence:
    states = info.get("internal_states") or [{}]
    usage = (states[0] if isinstance(states, list) and states and isinstance(states[0], Mapping) else {}).get("memory_usage") or {}
    weight_gb = usage.get("weight")
    flags = {k: info.get(k) for k in ("cpu_offload_gb", "offload_group_size", "offload_mode", "device") if k in info}
    return ModeEvidence(resident_bytes=int(float(weight_gb) * GIB) if weight_gb is not None else None,
                        dtypes=(str(info["dtype"]),) if info.get("dtype") else (),
                        attention_backend=info.get("attention_backend"),
                        figures={"flags": flags, "memory_usage": usage}, resolution_bytes=GIB // 1000)


def vllm_evidence(info: Mapping[str, Any]) -> ModeEvidence:
    raw = info.get("vllm_config")
    config: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    model = config.get("model_config") or {}
    attention = config.get("attention_config") or {}
    dtype = str(model.get("dtype") or "").removeprefix("torch.")
    return ModeEvidence(dtypes=(dtype,) if dtype else (), attention_backend=attention.get("backend"),
                        figures={"offload_config": config.get("offload_config"), "version": info.get("version")})


READERS.register("hf", hf_evidence)
READERS.register("sglang", sglang_evidence)
READERS.register("vllm", vllm_evidence)
