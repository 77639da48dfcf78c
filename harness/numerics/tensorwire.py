"""Tensors over HTTP in binary: ``/get_weights_by_name`` negotiated by ``Accept``, JSON as the fallback.

The client asks with ``Accept: application/octet-stream``. A runtime that can (the hf runtime)
answers with the tensor's raw little-endian bytes in its own dtype and two headers,
``X-Tensor-Dtype`` (a safetensors name: F32, BF16, F16, ...) and ``X-Tensor-Shape`` (``4,8``;
empty for a scalar); the body is read straight into one numpy buffer (no JSON, no copy beyond the
socket's). A runtime that only speaks JSON (SGLang) ignores the header and answers a nested list,
which is decoded as before. One persistent connection per client; a dropped one is reopened once.

Given a tmpfs directory (``use_directory``; harness/boot/xferdir.py makes one per cell), the client
also offers a shared-memory region (harness/numerics/tensorshm.py) with ``Accept: application/x-tensor-region``:
a runtime on the same host writes the bytes there and answers headers only (``X-Tensor-Offset``,
``X-Tensor-Bytes``), and the tensor is a view of the region: no socket copies. A runtime that
cannot (remote, full tmpfs, no room) answers in the body as above, so the socket stays the fallback.
"""
from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from harness.errors import RuntimeRequestError
from harness.numerics.tensors import UnknownDtype, from_bytes
from harness.numerics.tensorshm import Offer, Region

RAW_TYPE = "application/octet-stream"
REGION_TYPE = "application/x-tensor-region"  # hf_server.py spells the same names
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
        self.stats = {"raw_tensors": 0, "raw_bytes": 0, "json_tensors": 0, "json_bytes": 0, "seconds": 0.0,
                      "region_tensors": 0, "region_bytes": 0}
        self.directory: Path | None = None
        self.region: Region | None = None
        self.region_error: str | None = None

    def use_directory(self, directory: Path | None) -> None:
        """Offer a shared-memory region made in ``directory`` (tmpfs) from the next fetch on."""
        self.end_transfer()
        self.directory, self.region_error = directory, None

    def fetch(self, name: str, truncate_size: int) -> np.ndarray | None:
        """The runtime's tensor ``name`` (first ``truncate_size`` rows), or None when it has none."""
        request = {"name": name, "truncate_size": truncate_size}
        t0 = time.perf_counter()
        try:
            try:
                return self._ask(name, request)
            except (http.client.HTTPException, ConnectionError):  # a kept-alive connection the server closed
                self.close()
                return self._ask(name, request)
        except (http.client.HTTPException, OSError) as exc:
            self.close()
            raise RuntimeRequestError(self.cell_id, f"POST {PATH} {name!r} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            self.stats["seconds"] += time.perf_counter() - t0

    def post_binary(self, path: str, payload: dict[str, Any]) -> tuple[np.ndarray, dict[str, str]] | None:
        """POST ``payload`` to another binary endpoint (e.g. ``/layer_states``) and decode its raw tensor
        answer; its headers come back too (names in lower case). None when the runtime has no such endpoint (404/405)."""
        try:
            try:
                resp = self._post_json(path, payload, accept=RAW_TYPE)
            except (http.client.HTTPException, ConnectionError):  # a kept-alive connection the server closed
                self.close()
                resp = self._post_json(path, payload, accept=RAW_TYPE)
            if resp.status in (404, 405):
                resp.read()
                return None
            if resp.status != 200 or not (resp.getheader("Content-Type") or "").startswith(RAW_TYPE):
                raise RuntimeRequestError(self.cell_id, f"POST {path}: HTTP {resp.status} "
                                                        f"({resp.getheader('Content-Type')}), not a binary tensor: "
                                                        f"{resp.read()[:300].decode('utf-8', 'replace')}")
            return self._raw(path.strip("/"), resp, path), {k.lower(): v for k, v in resp.getheaders()}
        except (http.client.HTTPException, OSError) as exc:
            self.close()
            raise RuntimeRequestError(self.cell_id, f"POST {path} failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def end_transfer(self) -> None:
        """Give the region back: the runtime closes it, this side unmaps it once no tensor views it."""
        region, self.region = self.region, None
        if region is None:
            return
        region.close()
        try:
            self._post_json("/release_tensor_region", {"path": str(region.path)})
        except (http.client.HTTPException, OSError):
            self.close()  # the runtime is gone or busy: its end releases the region anyway

    def _offer(self) -> Offer | None:
        if self.region is None and self.directory is not None and self.region_error is None:
            try:
                self.region = Region.create(self.directory)
            except OSError as exc:
                self.region_error = f"no shared-memory region in {self.directory}: {exc}"
        return self.region.reserve() if self.region is not None else None

    def _ask(self, name: str, request: dict[str, Any]) -> np.ndarray | None:
        offer = self._offer()
        try:
            payload = {**request, "region": offer.as_request(self.region)} if offer and self.region else request
            resp = self._post_json(PATH, payload, accept=f"{REGION_TYPE}, {RAW_TYPE};q=0.9" if offer else RAW_TYPE)
            if offer is not None and (resp.getheader("Content-Type") or "").startswith(REGION_TYPE):
                value, offer = self._in_region(name, resp, offer), None
                return value
            return self._answer(name, resp)
        finally:
            if offer is not None and self.region is not None:
                self.region.cancel(offer)

    def _post_json(self, path: str, payload: dict[str, Any],
                   accept: str = "application/json") -> http.client.HTTPResponse:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        self._conn.request("POST", path, body=json.dumps(payload).encode(), headers={
            "Content-Type": "application/json", "Accept": f"{accept}, application/json;q=0.5"})
        return self._conn.getresponse()

    def _answer(self, name: str, resp: http.client.HTTPResponse) -> np.ndarray | None:
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

    def _in_region(self, name: str, resp: http.client.HTTPResponse, offer: Offer) -> np.ndarray:
        resp.read()
        region = self.region
        assert region is not None
        offset, nbytes = resp.getheader("X-Tensor-Offset"), resp.getheader("X-Tensor-Bytes")
        try:
            base = region.claim(offer, int(offset or -1), int(nbytes or -1))
        except ValueError as exc:
            raise RuntimeRequestError(self.cell_id, f"{PATH} {name!r}: bad shared-memory answer (X-Tensor-Offset="
                                                    f"{offset!r}, X-Tensor-Bytes={nbytes!r}): {exc}") from exc
        region.unlink()  # the runtime has it open now: no file left behind whatever happens next
        self.stats["region_tensors"] += 1
        self.stats["region_bytes"] += len(base)
        return self._decode(name, resp, base)

    def _raw(self, name: str, resp: http.client.HTTPResponse, path: str = PATH) -> np.ndarray:
        shape, length = resp.getheader(SHAPE_HEADER), resp.getheader("Content-Length")
        if shape is None or length is None:
            raise RuntimeRequestError(self.cell_id, f"{path} {name!r}: a binary answer needs {SHAPE_HEADER} and "
                                                    f"Content-Length headers; got {dict(resp.getheaders())}")
        buf = np.empty(int(length), dtype=np.uint8)
        view, got = buf.data, 0
        while got < len(buf):
            n = resp.readinto(view[got:])
            if not n:
                raise RuntimeRequestError(self.cell_id, f"{path} {name!r}: the answer ended after {got} of "
                                                        f"{len(buf)} bytes")
            got += n
        self.stats["raw_tensors"] += 1
        self.stats["raw_bytes"] += got
        return self._decode(name, resp, buf, path)

    def _decode(self, name: str, resp: http.client.HTTPResponse, buf: np.ndarray, path: str = PATH) -> np.ndarray:
        dtype, shape = resp.getheader(DTYPE_HEADER) or "", resp.getheader(SHAPE_HEADER) or ""
        try:
            return from_bytes(buf, dtype, tuple(int(d) for d in shape.split(",") if d.strip()))
        except (UnknownDtype, ValueError) as exc:
            raise RuntimeRequestError(self.cell_id, f"{path} {name!r}: bad binary answer "
                                                    f"({DTYPE_HEADER}={dtype!r}, {SHAPE_HEADER}={shape!r}): {exc}") from exc


def _fetcher(client: Any) -> TensorFetcher | None:
    fetcher = getattr(client, "fetcher", None)
    return fetcher if isinstance(fetcher, TensorFetcher) else None


def transfer_stats(client: Any) -> dict[str, float] | None:
    """A client's transfer counters when it fetches through a TensorFetcher, else None."""
    fetcher = _fetcher(client)
    return dict(fetcher.stats) if fetcher is not None else None


def share_directory(client: Any, directory: Path | None) -> bool:
    """Let the client's tensors come through shared memory in ``directory``; False when it cannot."""
    fetcher = _fetcher(client)
    if fetcher is None or directory is None:
        return False
    fetcher.use_directory(directory)
    return True


def end_transfer(client: Any) -> None:
    """Give back the client's shared-memory region, if it has one (after a weight-parity pass)."""
    fetcher = _fetcher(client)
    if fetcher is not None:
        fetcher.end_transfer()
