"""What this machine allows, measured in the same run as benchmarks/bench_scale.py: reading files
from the page cache, a loopback socket, memcpy and the bitwise compare; and peak RSS from /proc."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np

from harness.cards import Tolerance
from harness.tensordiff import figures

MB = 1e6
SAMPLE_BYTES = 256 << 20


def raw_read_mb_s(files: list[Path], block: int = 64 << 20) -> float:
    """MB/s reading ``files`` whole into one reused buffer; best of two reads (the second is from the page cache)."""
    buf = memoryview(bytearray(block))
    best = 0.0
    for _ in range(2):
        t0, total = time.perf_counter(), 0
        for f in files:
            with f.open("rb", buffering=0) as fh:
                while n := fh.readinto(buf):
                    total += n
        best = max(best, total / MB / (time.perf_counter() - t0))
    return best


def memcpy_mb_s(nbytes: int = SAMPLE_BYTES) -> float:
    src = np.ones(nbytes, np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    t0 = time.perf_counter()
    np.copyto(dst, src)
    return nbytes / MB / (time.perf_counter() - t0)


def compare_mb_s(nbytes: int = SAMPLE_BYTES) -> float:
    """MB/s of harness.tensordiff on two equal float32 arrays (its fast path)."""
    a = np.random.default_rng(0).random(nbytes // 4, dtype=np.float32)
    b = a.copy()
    t0 = time.perf_counter()
    figures(a, b, Tolerance(1e-6, 1e-5))
    return nbytes / MB / (time.perf_counter() - t0)


def loopback_mb_s(nbytes: int = SAMPLE_BYTES) -> float:
    """MB/s through a 127.0.0.1 TCP connection, sendall from one buffer, recv_into another."""
    server = socket.create_server(("127.0.0.1", 0))
    payload = memoryview(bytearray(nbytes))

    def send() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(payload)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    sink = memoryview(bytearray(nbytes))
    with socket.create_connection(server.getsockname()) as client:
        t0, got = time.perf_counter(), 0
        while got < nbytes:
            got += client.recv_into(sink[got:])
        seconds = time.perf_counter() - t0
    thread.join()
    server.close()
    return nbytes / MB / seconds


def limits() -> dict[str, float]:
    return {"loopback_mb_s": loopback_mb_s(), "memcpy_mb_s": memcpy_mb_s(), "compare_mb_s": compare_mb_s()}


def rss_mb(pid: str, field: str) -> float:
    """VmRSS or VmHWM of a process in MB (``pid`` "self" for this one); 0 when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return 0.0
