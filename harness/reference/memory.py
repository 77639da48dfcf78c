"""Will the reference fit? A memory preflight run before the reference runtime is booted.

The need is the checkpoint's weights at the reference dtype (a bf16 checkpoint doubles in a
float32 reference), plus 10 % for activations and load buffers and 512 MiB for the runtime itself,
in the memory that holds the weights: host memory for a CPU reference or cpu offload, the card's
memory for an accelerator reference, only the runtime's 512 MiB of host memory when the weights
are offloaded to disk. Available is ``/proc/meminfo`` MemAvailable; for an accelerator, the free
memory (``mem_get_info``) of the card leased for the reference (harness/plugin/refboot.py), or before a
card is leased the largest card's total, as the runtime's torch reports them. A 61 GB bf16 checkpoint needs ~135 GiB as a float32 CPU
reference; on a host with 31 GiB available it is refused before anything boots:

    preflight: reference hf-cpu-qwen3-30b-a3b-none (hf-cpu float32) will not fit: it needs ~135 GiB of
    host memory (...), 31 GiB available (/proc/meminfo MemAvailable). Alternatives: ...

``HARNESS_REFERENCE_MEMORY_AVAILABLE`` (test-only: bytes, or a number with K/M/G/T) replaces the
measured amount, so a test can make a tiny reference "not fit".
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import final

from harness.boot.devices import DeviceInventory
from harness.config.matrix import Cell
from harness.config.refspec import ReferenceSpec
from harness.errors import ConfigError, PreflightError
from harness.numerics.checkpoint import Checkpoint

TEST_MEMORY_ENV = "HARNESS_REFERENCE_MEMORY_AVAILABLE"
RUNTIME_OVERHEAD = 512 * 2**20
MARGIN = 1.10
ITEMSIZE = {"float32": 4, "bfloat16": 2, "float16": 2}
_ST_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
                "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_ST_DTYPE = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class ReferenceRefused(PreflightError):
    """The reference cell was not booted: it would not fit here, or its device is absent."""


@final
@dataclasses.dataclass(frozen=True)
class MemoryNeed:
    """What booting the reference would take, and in which memory."""

    checkpoint_bytes: int
    checkpoint_dtype: str
    weights_bytes: int  # at the reference dtype
    needed_bytes: int
    pool: str  # "host memory" or "<device> card memory"

    def explain(self, dtype: str) -> str:
        if self.weights_bytes == 0:
            return "weights on disk; the runtime itself"
        return (f"{size(self.checkpoint_bytes)} checkpoint in {self.checkpoint_dtype} -> {size(self.weights_bytes)} in "
                f"{dtype}, +{MARGIN - 1:.0%} and {size(RUNTIME_OVERHEAD)} for the runtime")


@final
@dataclasses.dataclass(frozen=True)
class MemoryAvailable:
    """How much of that memory there is, and how it was measured."""

    bytes: int
    how: str


def size(n: float) -> str:
    """``1536`` -> ``1.5 KiB``, ``3 * 2**30`` -> ``3.0 GiB``."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def estimate(checkpoint: Path, spec: ReferenceSpec, on_host: bool = False) -> MemoryNeed:
    """The memory the reference ``spec`` needs for ``checkpoint`` (``on_host``: a simulated device runs on the CPU)."""
    ckpt = Checkpoint(Path(checkpoint))
    weights = 0
    by_dtype: dict[str, int] = {}  # floating dtype -> elements
    for name in ckpt.names():
        elements, st = math.prod(ckpt.shape(name)), ckpt.dtype(name)
        if st in _ST_DTYPE:
            by_dtype[_ST_DTYPE[st]] = by_dtype.get(_ST_DTYPE[st], 0) + elements
            weights += elements * ITEMSIZE.get(spec.dtype, 4)
        else:
            weights += elements * _ST_ITEMSIZE.get(st, 4)
    on_disk = sum(f.stat().st_size for f in Path(checkpoint).glob("*.safetensors"))
    main = max(by_dtype, key=by_dtype.__getitem__) if by_dtype else "unknown dtype"
    if spec.offload == "disk":
        return MemoryNeed(on_disk, main, 0, RUNTIME_OVERHEAD, "host memory")
    pool = "host memory" if spec.device == "cpu" or on_host or spec.offload == "cpu" else f"{spec.device} card memory"
    return MemoryNeed(on_disk, main, weights, int(weights * MARGIN) + RUNTIME_OVERHEAD, pool)


def device_inventory(cell: Cell, python: str) -> DeviceInventory:
    """The reference cell's device as the runtime's Python sees it; refused when it is absent here."""
    from harness.boot.devices import probe

    inv = probe(cell.device, python)
    if inv.absent_reason:
        raise ReferenceRefused(cell.id, f"reference {cell.id}: its device is absent here ({inv.absent_reason}); "
                                        f"import a golden made where it exists (`harness reference import FILE`)")
    return inv


def available(cell: Cell, pool: str, python: str, environ: Mapping[str, str],
              cards: Sequence[int] = (), inv: DeviceInventory | None = None) -> MemoryAvailable | None:
    """The memory of ``pool``; None when it cannot be told (then nothing is refused). For a card
    pool: the free memory of the card leased for the reference (``cards``), else the largest total;
    ``inv``: the device already probed (else it is probed here)."""
    override = environ.get(TEST_MEMORY_ENV)
    if override:
        return MemoryAvailable(parse_bytes(override), f"{TEST_MEMORY_ENV}={override}, test-only")
    if pool == "host memory":
        return _mem_available()
    from harness.boot.devices import free_memory

    inv = inv or device_inventory(cell, python)
    if cards:
        free, why = free_memory(cell.device, python, cards[0])
        if free is not None:
            return MemoryAvailable(free, f"free memory of {cell.device} card {cards[0]} leased for it (mem_get_info)")
        if cards[0] < len(inv.memory_gb):
            return MemoryAvailable(int(inv.memory_gb[cards[0]] * 2**30), f"total memory of {cell.device} card "
                                   f"{cards[0]} leased for it (its free memory could not be read: {why})")
    if not inv.memory_gb:
        return None
    best = max(range(len(inv.memory_gb)), key=lambda i: inv.memory_gb[i])
    return MemoryAvailable(int(inv.memory_gb[best] * 2**30), f"total memory of {cell.device} card {best} ({inv.names[best]}), "
                                                             "the largest; no card leased yet")


def parse_bytes(text: str) -> int:
    """``"1048576"``, ``"64M"``, ``"1.5G"`` -> bytes."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in _UNITS and raw[-1:] else ""
    try:
        return int(float(raw[: len(raw) - len(unit)]) * _UNITS[unit])
    except ValueError:
        raise ConfigError(f"{TEST_MEMORY_ENV} takes bytes or a number with K/M/G/T (e.g. 64M), got {text!r}") from None


def _mem_available() -> MemoryAvailable | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return MemoryAvailable(int(line.split()[1]) * 1024, "/proc/meminfo MemAvailable")
    except (OSError, ValueError, IndexError):
        pass
    return None


def preflight(cell: Cell, spec: ReferenceSpec, checkpoint: Path, python: str, simulated: bool = False,
              environ: Mapping[str, str] | None = None, cards: Sequence[int] = (),
              inv: DeviceInventory | None = None) -> MemoryNeed:
    """Refuse (ReferenceRefused, reason ``preflight: ...``) a reference that will not fit; else what
    it needs. ``cards``: the card(s) leased for it, whose free memory counts; ``inv``: its device,
    probed already."""
    env = os.environ if environ is None else environ
    need = estimate(checkpoint, spec, on_host=simulated)
    have = available(cell, need.pool, python, env, () if simulated else cards, inv)
    if have is None or need.needed_bytes <= have.bytes:
        return need
    detail = (f"reference {cell.id} ({spec.label}) will not fit: it needs ~{size(need.needed_bytes)} of {need.pool} "
              f"({need.explain(spec.dtype)}), {size(have.bytes)} available ({have.how}). "
              f"Alternatives: {alternatives(cell.model, spec, checkpoint, simulated)}")
    raise ReferenceRefused(cell.id, detail)


def alternatives(model: str, spec: ReferenceSpec, checkpoint: Path, simulated: bool = False) -> str:
    """What else would give this model a reference: a smaller dtype, another device, disk offload, a golden."""
    out = []
    if ITEMSIZE.get(spec.dtype, 4) > 2:
        half = estimate(checkpoint, dataclasses.replace(spec, dtype="bfloat16"), on_host=simulated)
        out.append(f"a smaller dtype (matrix file `reference: {{dtype: bfloat16}}`, ~{size(half.needed_bytes)})")
    others = "|".join(d for d in ("cuda", "npu", "rocm", "xpu", "cpu") if d != spec.device)
    out.append(f"another device (`reference: {{device: {others}}}`)")
    if spec.runtime == "hf" and spec.offload != "disk":
        out.append("disk offload (`reference: {offload: disk}`: slow, weights read from disk)")
    golden = f"{model}.golden.json.gz"
    out.append(f"or a golden computed on a host where it fits: `harness reference export {model} --out {golden}` "
               f"there, then `harness reference import {model}.golden.json.gz` here")
    return "; ".join(out)
