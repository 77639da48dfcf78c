"""What this machine allows, measured in the same run as benchmarks/bench_scale.py: reading files
from the page cache, a loopback socket, memcpy, the bitwise compare and sha256; and peak RSS from /proc."""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np

from harness.config.cards import Tolerance
from harness.numerics.tensordiff import figures

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
    """MB/s of harness.numerics.tensordiff on two equal float32 arrays (its fast path)."""
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


def sha256_mb_s(nbytes: int = SAMPLE_BYTES // 4) -> float:
    """MB/s of hashlib's sha256 over one buffer: the harness's side of a digest comparison (SGLang)."""
    data = memoryview(bytearray(nbytes))
    t0 = time.perf_counter()
    hashlib.sha256(data).digest()
    return nbytes / MB / (time.perf_counter() - t0)


def limits() -> dict[str, float]:
    return {"loopback_mb_s": loopback_mb_s(), "memcpy_mb_s": memcpy_mb_s(), "compare_mb_s": compare_mb_s(),
            "sha256_mb_s": sha256_mb_s()}


def rss_mb(pid: str, field: str, proc: Path = Path("/proc")) -> float:
    """VmRSS or VmHWM of a process in MB (``pid`` "self" for this one); 0 when it cannot be read."""
    try:
        for line in (proc / pid / "status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return 0.0


def descendants(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """``pid`` and every live process under it (SGLang: the server, its scheduler and detokenizer)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir(proc):
        if entry.name.isdigit():
            try:
                raw = (proc / entry.name / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(raw[raw.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    out, stack = [], [pid]
    while stack:
        out.append(stack.pop())
        stack.extend(children.get(out[-1], ()))
    return out


def tree_peak_mb(pid: int, proc: Path = Path("/proc")) -> tuple[float, int]:
    """The sum of VmHWM over ``pid``'s process tree in MB, and how many processes it counts.

    Shared pages count once per process, so for a tree of several processes this overstates.
    """
    pids = descendants(pid, proc)
    return sum(rss_mb(str(p), "VmHWM", proc) for p in pids), len(pids)
