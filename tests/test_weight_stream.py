"""Streaming weight parity's parts, without a runtime: bf16 storage, chunked figures, the bounded
fetch, stream order, coverage tallies, and the binary / JSON wire over a real local HTTP server."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from harness.checks.parity import compare
from harness.checks.weight_coverage import CoverageTally, kind_of
from harness.checks.weight_parity import stream_order
from harness.checks.weight_stream import BoundedFetch, PassClock
from harness.config.cards import Tolerance
from harness.numerics import tensordiff
from harness.numerics.checkpoint import Checkpoint
from harness.numerics.layout import Layout
from harness.numerics.tensors import BF16, bits, from_bytes, widen
from harness.numerics.tensorwire import TensorFetcher
from tests.test_checkpoint import write_safetensors

TOL = Tolerance(1e-6, 1e-5)


def to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 → bf16 bit patterns (truncation), stored as harness.numerics.tensors.BF16."""
    return (np.ascontiguousarray(x, dtype=np.float32).view(np.uint32) >> 16).astype("<u2").view(BF16)


def reference_figures(got: np.ndarray, want: np.ndarray, tol: Tolerance) -> tuple[float, float, float, float]:
    a, b = widen(got).astype(np.float64), widen(want).astype(np.float64)
    diff = np.abs(a - b)
    outside = diff > tol.atol + tol.rtol * np.abs(b)
    cos = float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(diff.max()), cos, float(outside.mean()), float((diff / (tol.atol + tol.rtol * np.abs(b))).max())


@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_chunked_figures_equal_the_whole_tensor_maths(chunk, monkeypatch):
    monkeypatch.setattr(tensordiff, "CHUNK_ELEMENTS", chunk)
    rng = np.random.default_rng(0)
    want = rng.normal(size=(5, 9, 4)).astype(np.float32)
    got = want.copy()
    got[3, 2:, 1] += 1e-3
    r = compare("w", got, want, TOL)
    max_abs, cos, frac, ratio = reference_figures(got, want, TOL)
    assert not r.ok
    assert r.max_abs == pytest.approx(max_abs) and r.cosine == pytest.approx(cos, abs=1e-12)
    assert r.frac_outside == pytest.approx(frac) and r.tol_ratio == pytest.approx(ratio)


def test_equal_bits_are_exact_and_a_nan_equal_to_itself_still_fails(monkeypatch):
    monkeypatch.setattr(tensordiff, "CHUNK_ELEMENTS", 3)
    want = np.arange(20, dtype=np.float32).reshape(4, 5)
    r = compare("w", want.copy(), want, TOL)
    assert (r.ok, r.max_abs, r.cosine, r.tol_ratio) == (True, 0.0, 1.0, 0.0)
    nan = want.copy()
    nan[3, 4] = np.nan
    assert not compare("w", nan, nan.copy(), TOL).ok
    b = to_bf16(nan)
    assert compare("w", b, b.copy(), TOL).note == "non-finite values"


def test_bf16_is_compared_in_its_bits_and_widened_exactly_when_values_differ():
    x = np.random.default_rng(1).normal(size=(6, 8)).astype(np.float32)
    b = to_bf16(x)
    assert compare("w", b, b.copy(), TOL).max_abs == 0.0
    changed = b.copy()
    bits(changed)[2, 3] ^= 1  # one ulp of bf16
    r = compare("w", changed, b, Tolerance(0, 0))
    assert not r.ok and r.frac_outside == pytest.approx(1 / 48)
    assert compare("w", widen(b), b, Tolerance(0, 0)).ok  # float32 runtime, bf16 checkpoint: exact widening


def test_bf16_views_slice_and_transpose_like_any_dtype():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = from_bytes(to_bf16(x).tobytes(), "BF16", (3, 4))
    assert np.array_equal(widen(b[1:, ::2].T), x[1:, ::2].T)


def test_the_fetch_holds_at_most_its_budget_plus_the_newest():
    sizes = {"a": 600, "b": 500, "c": 100, "d": 50}
    calls: list[str] = []
    fetch = BoundedFetch(lambda n: calls.append(n) or (np.zeros(sizes[n], np.uint8) if n in sizes else None),
                         PassClock(), budget=200)
    for name in ("a", "a", "b", "c", "d", "c", "zz", "zz"):
        fetch(name)
        assert sum(t.nbytes for t in fetch.held.values()) <= 200 + max(t.nbytes for t in fetch.held.values())
    assert calls == ["a", "b", "c", "d", "zz"]  # a repeated or absent name is asked once
    assert list(fetch.held) == ["d", "c"] and fetch.largest == 600 and fetch.fetched_bytes == 1250


def test_the_fetch_runs_ahead_of_the_comparison_within_its_byte_budget():
    sizes = {"a": 10, "b": 40, "c": 40, "d": 40, "e": 10}
    calls: list[str] = []
    with BoundedFetch(lambda n: calls.append(n) or np.zeros(sizes[n], np.uint8), PassClock(), budget=0,
                      plan=list(sizes), sizes=sizes, ahead=90) as fetch:
        fetch("a")
        for f in list(fetch.pending.values()):
            f.result()
        assert calls == ["a", "b", "c"]  # b + c = 80 fit 90 bytes ahead; d would make 120
        fetch("b")
        for f in list(fetch.pending.values()):
            f.result()
        assert calls == ["a", "b", "c", "d", "e"] and list(fetch.held) == ["b"]  # c + d + e = 90; budget 0: b alone held
    with BoundedFetch(lambda n: calls.append(n) or np.zeros(sizes[n], np.uint8), PassClock(), plan=list(sizes),
                      sizes=sizes, ahead=5) as fetch:
        calls.clear()
        fetch("a")
        for f in list(fetch.pending.values()):
            f.result()
        assert calls == ["a", "b", "c"]  # larger than the budget ahead: still the next two, never fewer


def test_stream_order_puts_the_members_of_a_runtime_tensor_together(tmp_path: Path):
    names = [f"model.layers.0.mlp.experts.{e}.{p}_proj.weight" for e in (0, 1, 10, 2) for p in ("gate", "up", "down")]
    write_safetensors(tmp_path / "model.safetensors", {n: ("F32", np.zeros(2, np.float32)) for n in names})
    order = stream_order(Checkpoint(tmp_path), Layout.load("transformers"), None)
    down = [i for i, n in enumerate(order) if "down_proj" in n]
    assert down == list(range(down[0], down[0] + 4))  # the down_proj stack's four experts in one run


def test_coverage_counts_elements_by_way_and_names_the_largest_gap():
    tally = CoverageTally(total=1000)
    tally.by_value(500)
    tally.by_digest(300)
    tally.not_verified("a", 150, kind_of("index 70 of x lies beyond the first 64 rows fetched (truncate_rows)", 64, 1))
    tally.not_verified("b", 50, kind_of("not exposed by the runtime", None, 1))
    m = tally.metrics()
    assert (m["coverage"], m["coverage_by_value"], m["coverage_by_digest"], m["coverage_not_verified"]) == (0.8, 0.5, 0.3, 0.2)
    assert m["not_verified_why"] == "sampled: truncate_rows=64"
    assert tally.headline().startswith("sampled 80 %")
    assert [g["why"] for g in tally.details()] == ["sampled: truncate_rows=64", "not exposed by the runtime"]


class _Server:
    """A local HTTP server answering /get_weights_by_name raw (when asked) or as JSON."""

    def __init__(self, tensors: dict[str, np.ndarray], raw: bool) -> None:
        tensors_, raw_ = tensors, raw

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a) -> None:
                pass

            def do_POST(self) -> None:
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                t = tensors_.get(req["name"])
                if t is None:
                    return self._reply(400, b"{}", "application/json")
                t = t[:req["truncate_size"]]
                if raw_ and "application/octet-stream" in self.headers.get("Accept", ""):
                    name = "BF16" if t.dtype == BF16 else "F32"
                    return self._reply(200, np.ascontiguousarray(t).tobytes(), "application/octet-stream",
                                       {"X-Tensor-Dtype": name, "X-Tensor-Shape": ",".join(map(str, t.shape))})
                return self._reply(200, json.dumps(widen(t).tolist()).encode(), "application/json")

            def _reply(self, code: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(params=[True, False], ids=["binary", "json-fallback"])
def served(request) -> Iterator[tuple[TensorFetcher, bool, dict[str, np.ndarray]]]:
    x = np.random.default_rng(2).normal(size=(7, 3)).astype(np.float32)
    tensors = {"f": x, "b": to_bf16(x)}
    server = _Server(tensors, raw=request.param)
    fetcher = TensorFetcher(server.url, "cell", timeout_s=10)
    yield fetcher, request.param, tensors
    fetcher.close()
    server.close()


def test_tensors_arrive_in_binary_when_offered_and_as_json_otherwise(served):
    fetcher, raw, tensors = served
    f, b = fetcher.fetch("f", 1 << 30), fetcher.fetch("b", 5)
    assert fetcher.fetch("missing", 10) is None
    assert np.array_equal(widen(f), tensors["f"]) and np.array_equal(widen(b), widen(tensors["b"][:5]))
    assert (b.dtype == BF16) is raw  # bf16 stays 16 bits on the binary path
    assert fetcher.stats["raw_tensors" if raw else "json_tensors"] == 2
    assert fetcher.stats["raw_bytes"] == (7 * 3 * 4 + 5 * 3 * 2 if raw else 0)
