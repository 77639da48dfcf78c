"""SGLang, launched as ``python -m sglang.launch_server`` in its own environment; native HTTP API.

Offload modes: ``cpu_offload_gb:N`` (V1, ``--cpu-offload-gb N``) and the V2 group offload modes
``cpu``, ``shm_cpu``, ``sharded_gpu``, ``meta`` (``--offload-group-size`` and friends).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.runtimes import workarounds
from harness.runtimes.base import AdapterDefaults, Capabilities, LaunchContext, LaunchSpec, RuntimeNeeds, WeightDigests
from harness.runtimes.client import NativeClient, RuntimeClient

V2_MODES = ("cpu", "shm_cpu", "sharded_gpu", "meta")
DEVICE_FLAG = {"cpu": "cpu", "cuda": "cuda", "rocm": "cuda", "npu": "npu", "xpu": "xpu"}
ATTENTION_BACKEND = {"npu": "ascend"}
# Model classes that implement /get_weights_by_name in SGLang 0.5.23 (others answer HTTP 400).
WEIGHTS_BY_NAME = frozenset({"LlamaForCausalLM", "GraniteForCausalLM", "OPTForCausalLM", "Exaone4ForCausalLM"})
# Every model class answers /weights_checker; sha256 except on CUDA and ROCm (a Triton kernel there).
DIGESTS = WeightDigests("/weights_checker", other_hash_devices=("cuda", "rocm"), other_hash="a Triton kernel")
NO_LAYER_STATES = ("its /generate return_hidden_states gives only the final hidden state (after the last norm); "
                   "per-layer outputs come only from boot flags (--debug-tensor-dump-output-folder dumps every leaf "
                   "op of every forward pass to .pt files, --forward-hooks attaches hook factories), not from a "
                   "running server (a CPU cell is booted a second time, dumping: harness/reference/sglang_layers.py)")


class SGLangAdapter(AdapterDefaults):
    """The adapter; group sizes for V2 offload can be overridden through runtime_options args."""

    name = "sglang"
    capabilities = Capabilities("SGLang", offload_modes=("none", "cpu_offload_gb:*", *V2_MODES), weight_layout="sglang",
                                weights_by_name=WEIGHTS_BY_NAME, weight_digests=DIGESTS, no_layer_states=NO_LAYER_STATES)
    offload_modes = capabilities.offload_modes
    default_boot_timeout_s = 600.0
    preflight = RuntimeNeeds(imports=("sglang",), install="pip install sglang==0.5.23")

    def na_reason(self, cell: Cell, card: ModelCard | None, *, simulated: bool = False) -> str | None:
        """V1 offload is a no-op on the CPU; V2 modes need an accelerator; shm_cpu/sharded_gpu need tp=1."""
        on_cpu = cell.device == "cpu" or simulated
        if cell.offload.startswith("cpu_offload_gb:") and on_cpu:
            return "--cpu-offload-gb moves weights to host memory, where they already are when running on the CPU"
        if cell.offload in V2_MODES and on_cpu:
            return (f"offload V2 (--offload-mode {cell.offload}) needs an accelerator: SGLang asserts the device is not "
                    "the CPU" + (" (this device is simulated on the CPU)" if simulated else ""))
        if cell.offload in ("shm_cpu", "sharded_gpu") and cell.tp != 1:
            return f"--offload-mode {cell.offload} needs tp=1 (it shards across ranks itself)"
        return None

    def launch(self, ctx: LaunchContext) -> LaunchSpec:
        cell = ctx.cell
        argv = [ctx.python, "-m", "sglang.launch_server", "--model-path", str(ctx.checkpoint),
                "--host", ctx.host, "--port", str(ctx.port), "--device", DEVICE_FLAG[ctx.run_device],
                "--dtype", cell.dtype, "--tp-size", str(cell.tp), "--random-seed", "0", "--skip-server-warmup"]
        if ctx.run_device == "cpu":
            argv += ["--max-total-tokens", "4096"]
        if ctx.run_device in ATTENTION_BACKEND:
            argv += ["--attention-backend", ATTENTION_BACKEND[ctx.run_device]]
        argv += offload_args(cell.offload)
        argv += list(ctx.extra_args)
        env = workarounds.apply(ctx.workarounds, ctx.env(PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false",
                                                          HF_HUB_OFFLINE="1"))
        return LaunchSpec(cell_id=cell.id, argv=tuple(argv), env=env, ready_url=f"http://{ctx.host}:{ctx.port}/health",
                          log_path=ctx.log_path, boot_timeout_s=ctx.boot_timeout_s)

    def client(self, base_url: str, cell_id: str) -> RuntimeClient:
        return NativeClient(base_url, cell_id)

    def fingerprint(self, server_info: Mapping[str, Any]) -> dict[str, Any]:
        keys = ("device", "attention_backend", "dtype", "tp_size", "cpu_offload_gb", "offload_group_size", "offload_mode",
                "max_total_tokens", "sampling_backend", "random_seed")
        return {"runtime": "sglang", "version": server_info.get("version"), **{k: server_info.get(k) for k in keys}}


def offload_args(mode: str) -> list[str]:
    """Command-line flags of an offload mode.

    >>> offload_args("cpu_offload_gb:4")
    ['--cpu-offload-gb', '4']
    >>> offload_args("meta")[-2:]
    ['--offload-mode', 'meta']
    """
    if mode == "none":
        return []
    if mode.startswith("cpu_offload_gb:"):
        return ["--cpu-offload-gb", mode.split(":", 1)[1]]
    return ["--offload-group-size", "2", "--offload-num-in-group", "1", "--offload-prefetch-step", "1",
            "--offload-mode", mode]


ADAPTER = SGLangAdapter()
