"""Device discovery, done in a subprocess of the runtime's Python: the harness never touches a device."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from typing import final

# Runs in the runtime's interpreter; prints one JSON object. Importing torch here is the point.
_PROBE = r"""
import json, sys
out = {"count": 0, "names": [], "how": [], "error": None}
dev = sys.argv[1]
try:
    import torch
    if dev == "npu":
        import torch_npu  # noqa: F401
        mod = torch.npu
    elif dev == "xpu":
        mod = torch.xpu
    else:
        mod = torch.cuda
        if dev == "rocm" and not getattr(torch.version, "hip", None):
            raise RuntimeError("torch is not a ROCm build (torch.version.hip is None)")
        if dev == "cuda" and getattr(torch.version, "hip", None):
            raise RuntimeError("torch is a ROCm build; use device rocm")
    out["count"] = int(mod.device_count()) if mod.is_available() else 0
    out["names"] = [mod.get_device_name(i) for i in range(out["count"])]
    out["memory_gb"] = [round(mod.get_device_properties(i).total_memory / 2**30, 1) for i in range(out["count"])]
    versions = {"torch": torch.__version__, "cuda": torch.version.cuda, "hip": getattr(torch.version, "hip", None)}
    if dev == "npu":
        versions["torch_npu"] = getattr(torch_npu, "__version__", None)
        import glob, os
        for cfg in glob.glob(os.path.join(os.environ.get("ASCEND_HOME_PATH", "/usr/local/Ascend/ascend-toolkit/latest"), "*version*.cfg")):
            versions["cann"] = open(cfg).read().strip().splitlines()[0][:200]
            break
    out["versions"] = versions
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""

# Free memory of the one card made visible (``mem_get_info`` of device 0 there); prints bytes.
_FREE = r"""
import sys, torch
dev = sys.argv[1]
if dev == "npu":
    import torch_npu  # noqa: F401
mod = torch.npu if dev == "npu" else torch.xpu if dev == "xpu" else torch.cuda
print(int(mod.mem_get_info(0)[0]))
"""

_HOW = {
    "cuda": "torch.cuda.device_count()",
    "rocm": "torch.cuda.device_count() on a ROCm build of torch",
    "npu": "import torch_npu; torch.npu.device_count()",
    "xpu": "torch.xpu.device_count()",
}


@final
@dataclasses.dataclass(frozen=True)
class DeviceInventory:
    """What a probe found for one device kind, and how it looked."""

    device: str
    count: int
    names: tuple[str, ...] = ()
    how: str = ""
    error: str | None = None
    simulated: bool = False
    memory_gb: tuple[float, ...] = ()
    versions: dict[str, object] = dataclasses.field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def simulate(cls, device: str, count: int) -> DeviceInventory:
        """Devices that --simulate-devices makes the harness believe in (runtimes run on the CPU)."""
        return cls(device, count, tuple(f"simulated {device} {i}" for i in range(count)), "--simulate-devices", None, True)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @property
    def absent_reason(self) -> str | None:
        """Why the device counts as absent (names what was looked for), or None when present."""
        if self.count > 0:
            return None
        why = f" ({self.error})" if self.error else " (0 devices)"
        return f"no {self.device.upper()} device: looked with {self.how}{why}"


def inventory(devices: tuple[str, ...], python_for: dict[str, str], simulate: dict[str, int]) -> dict[str, DeviceInventory]:
    """Probe each device kind once (simulated kinds are not probed)."""
    return {d: DeviceInventory.simulate(d, simulate[d]) if d in simulate else probe(d, python_for[d]) for d in devices}


def probe(device: str, python: str, timeout_s: float = 120.0) -> DeviceInventory:
    """Count devices of a kind as the runtime's Python sees them; cpu is always present (count 1)."""
    if device == "cpu":
        return DeviceInventory("cpu", 1, ("host cpu",), "always present")
    how = f"{_HOW.get(device, device)} in {python}"
    if device == "npu" and shutil.which("npu-smi") is None:
        how += "; npu-smi not on PATH"
    try:
        done = subprocess.run([python, "-c", _PROBE, device], capture_output=True, text=True, timeout=timeout_s)
        data = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    except (subprocess.TimeoutExpired, OSError, ValueError) as exc:
        return DeviceInventory(device, 0, (), how, f"probe failed: {type(exc).__name__}: {exc}")
    if not data:
        return DeviceInventory(device, 0, (), how, f"probe printed nothing; stderr: {done.stderr.strip()[-300:]}")
    return DeviceInventory(device, int(data.get("count") or 0), tuple(data.get("names") or ()), how, data.get("error"),
                           memory_gb=tuple(data.get("memory_gb") or ()), versions=dict(data.get("versions") or {}))


def free_memory(device: str, python: str, card: int, timeout_s: float = 120.0) -> tuple[int | None, str]:
    """Free bytes on ``card`` of ``device`` as the runtime's Python sees it (only that card made
    visible), or None and why it could not be read."""
    from harness.runtimes.base import VISIBLE_DEVICES_ENV

    env = dict(os.environ)
    var = VISIBLE_DEVICES_ENV.get(device)
    if var:
        env[var] = str(card)
    try:
        done = subprocess.run([python, "-c", _FREE, device], capture_output=True, text=True, timeout=timeout_s, env=env)
        return int(done.stdout.strip().splitlines()[-1]), ""
    except (subprocess.TimeoutExpired, OSError, ValueError, IndexError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:200]
