"""HTTP clients for runtimes: one small class per API dialect; what they answer is a Generation (generation.py)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import requests

from harness.errors import RuntimeRequestError
from harness.numerics.tensorwire import TensorFetcher
from harness.runtimes.generation import Generation


class RuntimeClient(Protocol):
    """What checks may ask of a running runtime."""

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, top_logprobs: int = 0) -> list[Generation]: ...

    def weight(self, name: str, truncate_rows: int | None = None) -> np.ndarray | None: ...

    def server_info(self) -> dict[str, Any]: ...


def weight_digests(client: RuntimeClient) -> list[dict[str, Any]] | None:
    """A client's per-tensor checksums when its runtime offers them (see NativeClient), else None."""
    method = getattr(client, "weight_digests", None)
    return method() if method is not None else None


FULL_ROWS = 1 << 30


class NativeClient:
    """SGLang's native API (/generate, /get_weights_by_name, /get_server_info); the hf runtime speaks it too."""

    def __init__(self, base_url: str, cell_id: str, timeout_s: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.cell_id = cell_id
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.fetcher = TensorFetcher(self.base_url, cell_id, timeout_s)

    def _post(self, path: str, payload: dict[str, Any]) -> requests.Response:
        try:
            return self.session.post(f"{self.base_url}{path}", json=payload, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise RuntimeRequestError(self.cell_id, f"POST {path} failed: {type(exc).__name__}: {exc}") from exc

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, top_logprobs: int = 0) -> list[Generation]:
        payload = {
            "text": list(prompts),
            "sampling_params": {"temperature": 0.0, "max_new_tokens": max_new_tokens},
            "return_logprob": True,
            "top_logprobs_num": top_logprobs,
        }
        resp = self._post("/generate", payload)
        if resp.status_code != 200:
            raise RuntimeRequestError(self.cell_id, f"POST /generate answered HTTP {resp.status_code}: {resp.text[:500]}")
        items = resp.json()
        if len(items) != len(prompts):
            raise RuntimeRequestError(self.cell_id, f"/generate returned {len(items)} answers for {len(prompts)} prompts")
        return [_native_generation(p, item) for p, item in zip(prompts, items, strict=True)]

    def weight(self, name: str, truncate_rows: int | None = None) -> np.ndarray | None:
        """The runtime's tensor: raw bytes in its own dtype where the runtime offers them (hf), else
        SGLang's JSON list as float32 (harness.numerics.tensorwire). SGLang truncates the first dimension to
        100 rows unless told otherwise."""
        return self.fetcher.fetch(name, truncate_rows if truncate_rows is not None else FULL_ROWS)

    def weight_digests(self) -> list[dict[str, Any]] | None:
        """SGLang's ``/weights_checker`` checksums: one entry per rank, ``{"tp_rank", "tp_size",
        "checksums": {runtime name: 16 hex digits}}``; None when the runtime has no such endpoint."""
        resp = self._post("/weights_checker", {"action": "checksum"})
        if resp.status_code in (400, 404, 405):
            return None
        if resp.status_code != 200:
            raise RuntimeRequestError(self.cell_id, f"/weights_checker: HTTP {resp.status_code}: {resp.text[:300]}")
        out = []
        for rank in resp.json().get("ranks") or []:
            info = rank.get("parallelism_info") or {}
            if isinstance(info, list):  # 0.5.23: a list of one per role (never empty here: ``or {}``)
                info = info[0]
            out.append({"tp_rank": int(info.get("tp_rank", 0)), "tp_size": int(info.get("tp_size", 1)),
                        "checksums": dict(rank.get("checksums") or {})})
        return out

    def server_info(self) -> dict[str, Any]:
        try:
            resp = self.session.get(f"{self.base_url}/get_server_info", timeout=30)
            return resp.json() if resp.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            return {}


def _native_generation(prompt: str, item: dict[str, Any]) -> Generation:
    meta = item.get("meta_info") or {}
    tokens = meta.get("output_token_logprobs") or []
    tops = meta.get("output_top_logprobs") or []
    return Generation(
        prompt=prompt,
        text=str(item.get("text", "")),
        token_ids=tuple(int(t[1]) for t in tokens),
        logprobs=tuple(float(t[0]) for t in tokens),
        top_logprobs=tuple(tuple((int(t[1]), float(t[0])) for t in step or ()) for step in tops),
    )
