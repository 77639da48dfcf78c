"""Tensors over HTTP in binary: ``/get_weights_by_name`` negotiated by ``Accept``, JSON as the fallback.

The client asks with ``Accept: application/octet-stream``. A runtime that can (the hf runtime)
answers with the tensor's raw little-endian bytes in its own dtype and two headers,
``X-Tensor-Dtype`` (a safetensors name: F32, BF16, F16, ...) and ``X-Tensor-Shape`` (``4,8``;
empty for a scalar); the body is read straight into one numpy buffer (no JSON, no copy beyond the
socket's). A runtime that only speaks JSON (SGLang) ignores the header and answers a nested list,
which is decoded as before. One persistent connection per client; a dropped one is reopened once.
"""
from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from harness.errors import RuntimeRequestError
from harness.tensors import UnknownDtype, from_bytes

RAW_TYPE = "application/octet-stream"
DTYPE_HEADER = "X-Tensor-Dtype"  # hf_server.py spells the same two names (it imports nothing from the harness)
SHAPE_HEADER = "X-Tensor-Shape"
PATH = "/get_weights_by_name"


class TensorFetcher:
    """Fetch one runtime tensor by name; counts what came in binary and what as JSON."""

    def __init__(self, base_url: str, cell_id: str, timeout_s: float) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cell_id = cell_id
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self.stats = {"raw_tensors": 0, "raw_bytes": 0, "json_tensors": 0, "json_bytes": 0, "seconds": 0.0}

    def fetch(self, name: str, truncate_size: int) -> np.ndarray | None:
        """The runtime's tensor ``name`` (first ``truncate_size`` rows), or None when it has none."""
        body = json.dumps({"name": name, "truncate_size": truncate_size}).encode()
        t0 = time.perf_counter()
        try:
            try:
                return self._ask(name, body)
            except (http.client.HTTPException, ConnectionError):  # a kept-alive connection the server closed
                self.close()
                return self._ask(name, body)
        except (http.client.HTTPException, OSError) as exc:
            self.close()
            raise RuntimeRequestError(self.cell_id, f"POST {PATH} {name!r} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            self.stats["seconds"] += time.perf_counter() - t0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _ask(self, name: str, body: bytes) -> np.ndarray | None:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        self._conn.request("POST", PATH, body=body, headers={
            "Content-Type": "application/json", "Accept": f"{RAW_TYPE}, application/json;q=0.5"})
        resp = self._conn.getresponse()
        if resp.status in (400, 404):
            resp.read()
            return None
        if resp.status != 200:
            raise RuntimeRequestError(self.cell_id, f"{PATH} {name!r}: HTTP {resp.status}: "
                                                    f"{resp.read()[:300].decode('utf-8', 'replace')}")
        if (resp.getheader("Content-Type") or "").startswith(RAW_TYPE):
            return self._raw(name, resp)
        data = resp.read()
        self.stats["json_tensors"] += 1
        self.stats["json_bytes"] += len(data)
        value = json.loads(data)
        return None if value is None else np.asarray(value, dtype=np.float32)

    def _raw(self, name: str, resp: http.client.HTTPResponse) -> np.ndarray:
        dtype, shape = resp.getheader(DTYPE_HEADER) or "", resp.getheader(SHAPE_HEADER)
        length = resp.getheader("Content-Length")
        if shape is None or length is None:
            raise RuntimeRequestError(self.cell_id, f"{PATH} {name!r}: a binary answer needs {SHAPE_HEADER} and "
                                                    f"Content-Length headers; got {dict(resp.getheaders())}")
        buf = np.empty(int(length), dtype=np.uint8)
        view, got = memoryview(buf), 0
        while got < len(buf):
            n = resp.readinto(view[got:])
            if not n:
                raise RuntimeRequestError(self.cell_id, f"{PATH} {name!r}: the answer ended after {got} of "
                                                        f"{len(buf)} bytes")
            got += n
        self.stats["raw_tensors"] += 1
        self.stats["raw_bytes"] += got
        try:
            return from_bytes(buf, dtype, tuple(int(d) for d in shape.split(",") if d.strip()))
        except (UnknownDtype, ValueError) as exc:
            raise RuntimeRequestError(self.cell_id, f"{PATH} {name!r}: bad binary answer "
                                                    f"({DTYPE_HEADER}={dtype!r}, {SHAPE_HEADER}={shape!r}): {exc}") from exc


def transfer_stats(client: Any) -> dict[str, float] | None:
    """A client's transfer counters when it fetches through a TensorFetcher, else None."""
    fetcher = getattr(client, "fetcher", None)
    return dict(fetcher.stats) if isinstance(fetcher, TensorFetcher) else None
