"""The reference runtime: HF transformers + accelerate, served by hf_server.py in its own process."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.runtimes.base import AdapterDefaults, Capabilities, LaunchContext, LaunchSpec, RuntimeNeeds
from harness.runtimes.client import NativeClient, RuntimeClient

SERVER_SCRIPT = Path(__file__).with_name("hf_server.py")


def cpu_threads(env: Mapping[str, str]) -> str:
    """Host threads for the runtime: HARNESS_RUNTIME_THREADS, else 1.

    One thread is fastest for the tiny models and avoids oversubscription when several cells run
    at once (measured 15x slower generation with 2 threads per runtime on a loaded 2-core host).
    """
    return env.get("HARNESS_RUNTIME_THREADS") or "1"


class HFAdapter(AdapterDefaults):
    """Offload through accelerate's real device maps: decoder layers to host memory or to disk."""

    name = "hf"
    # every model class's tensors by name, in the checkpoint's own layout; no digests
    capabilities = Capabilities("transformers", offload_modes=("none", "cpu", "disk"), weight_layout="transformers")
    offload_modes = capabilities.offload_modes
    default_boot_timeout_s = 180.0
    # located, not imported: importing transformers would add seconds to every run
    preflight = RuntimeNeeds(present=("torch", "transformers", "accelerate", "safetensors"),
                             install="pip install torch transformers accelerate safetensors: the harness's [hf] extra")

    def na_reason(self, cell: Cell, card: ModelCard | None, *, simulated: bool = False) -> str | None:
        """N/A: cpu offload on the cpu device; tp > 1 (except simulated: leases k cards, runs unsharded)."""
        if cell.device == "cpu" and cell.offload == "cpu":
            return "cpu offload moves weights to host memory, where they already are on the cpu device"
        if cell.offload not in self.offload_modes:
            return f"the hf runtime has no offload mode {cell.offload!r} (it has {', '.join(self.offload_modes)})"
        if cell.tp != 1 and not simulated:
            return "the hf reference runtime does not shard (tp must be 1)"
        return None

    def launch(self, ctx: LaunchContext) -> LaunchSpec:
        argv = [
            ctx.python, str(SERVER_SCRIPT), "--model", str(ctx.checkpoint), "--device", ctx.run_device,
            "--offload", ctx.cell.offload, "--dtype", ctx.cell.dtype, "--host", ctx.host, "--port", str(ctx.port),
        ]
        if ctx.cell.offload != "none":  # in the cell's scratch dir, removed at teardown (else the server makes its own in /tmp)
            argv += ["--offload-dir", str(ctx.workdir / "offload")]
        argv += list(ctx.extra_args)
        return LaunchSpec(
            cell_id=ctx.cell.id, argv=tuple(argv),
            env=ctx.env(PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
                        TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS=cpu_threads(ctx.base_env)),
            ready_url=f"http://{ctx.host}:{ctx.port}/health", log_path=ctx.log_path,
            boot_timeout_s=ctx.boot_timeout_s,
        )

    def client(self, base_url: str, cell_id: str) -> RuntimeClient:
        return NativeClient(base_url, cell_id)

    def fingerprint(self, server_info: Mapping[str, Any]) -> dict[str, Any]:
        versions = dict(server_info.get("versions") or {})
        return {"runtime": "hf", "version": versions.get("transformers"), "versions": versions,
                "offload_targets": server_info.get("offload_targets"), "load_s": server_info.get("load_s"),
                "fault": server_info.get("fault")}


ADAPTER = HFAdapter()
