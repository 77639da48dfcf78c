"""Where hf_server.py's weights really live, for the mode_active check (harness/checks/mode_active.py).

Standalone like hf_server.py (torch only). Read from the live model, never from the flags the
server was given: a parameter on the ``meta`` device is offloaded (accelerate's hook streams it from
its weights map: host memory when the map holds it in a state dict, disk otherwise); any other
parameter is resident on its device. Memory figures: the process's resident set (anonymous pages
hold loaded weights; file pages are mapped checkpoints) and the accelerator's allocated bytes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def placement(model: torch.nn.Module, offload_dir: str | None, device: str) -> dict[str, Any]:
    """Bytes of parameters per device and per offload store, the dtypes and attention the model computes with."""
    resident: dict[str, int] = {}
    offloaded = {"cpu": 0, "disk": 0}
    count = moved = 0
    for name, p in model.named_parameters():
        count += 1
        size = p.numel() * p.element_size()
        if p.device.type == "meta":
            moved += 1
            offloaded[_store(model, name)] += size
        else:
            resident[str(p.device)] = resident.get(str(p.device), 0) + size
    return {
        "params": count, "offloaded_params": moved, "resident_bytes": resident, "offloaded_bytes": offloaded,
        "offload_folder_bytes": _folder_bytes(offload_dir), "device_map": _targets(getattr(model, "hf_device_map", None)),
        "dtypes": sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.is_floating_point()}),
        "attention_backend": getattr(model.config, "_attn_implementation", None), "memory": memory(device),
    }


def _store(model: torch.nn.Module, name: str) -> str:
    """``cpu`` when accelerate holds the offloaded tensor in host memory, ``disk`` when it reads it from a file."""
    module_name, _, leaf = name.rpartition(".")
    parts = module_name.split(".") if module_name else []
    for cut in range(len(parts), -1, -1):
        wmap = getattr(getattr(model.get_submodule(".".join(parts[:cut])), "_hf_hook", None), "weights_map", None)
        key = ".".join(parts[cut:] + [leaf])
        if wmap is None or key not in wmap:
            continue
        while hasattr(wmap, "dataset") and hasattr(wmap, "prefix"):
            key, wmap = f"{wmap.prefix}{key}", wmap.dataset
        return "cpu" if key in (getattr(wmap, "state_dict", None) or {}) else "disk"
    return "disk"


def _targets(device_map: Any) -> dict[str, int]:
    """How many device-map entries go where: ``{"cpu": 3, "disk": 2}``."""
    out: dict[str, int] = {}
    for target in (device_map or {}).values():
        out[str(target)] = out.get(str(target), 0) + 1
    return out


def _folder_bytes(folder: str | None) -> int | None:
    if not folder or not os.path.isdir(folder):
        return None
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


def memory(device: str) -> dict[str, int]:
    """This process's resident set (total, anonymous, file-backed) and the accelerator's allocated bytes."""
    out: dict[str, int] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[{"VmRSS": "rss", "RssAnon": "rss_anon", "RssFile": "rss_file"}[key]] = int(value.split()[0]) * 1024
    except OSError:
        pass
    kind = device.split(":")[0]
    backend = getattr(torch, "npu" if kind == "npu" else kind, None) if kind != "cpu" else None
    if backend is not None and hasattr(backend, "memory_allocated"):
        out["device_allocated"] = int(backend.memory_allocated())
    return out
