"""Peak memory of a `harness run`'s process tree, runtimes excluded, sampled from /proc (Linux).

Why sampling and not ``resource.getrusage(RUSAGE_CHILDREN)``: the kernel folds every waited-for
descendant into that figure, runtimes included, and reports only the largest single process; it
cannot say what the harness itself holds. Instead, every ``interval_s`` this walks the tree under
the root pid and sorts each process into a class:

- ``runtime``: a process in another session than the root, and everything under it (the harness
  starts each runtime with ``start_new_session=True``); excluded from the harness figures;
- ``pytest``: the root (the pytest controller, `harness run` runs pytest in-process) and its xdist
  workers (execnet's ``exec(eval(sys.stdin.readline()))`` bootstrap);
- ``helper``: anything else the harness starts (the device probe, the tiny-model builder).

Per class it keeps the largest sum of VmRSS seen in one sample (shared library pages count once
per process, so sums overstate) and the largest per-process VmHWM (the kernel's exact high-water
mark, read while the process lives: growth in its last ``interval_s`` can be missed).
"""
from __future__ import annotations

import os
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

PROC = Path("/proc")
CLASSES = ("pytest", "helper", "runtime")
_EXECNET = "sys.stdin.readline"


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, session) of a live pid."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[3])


def _memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB; zeros for a vanished process or a kernel thread."""
    rss = hwm = 0
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return rss, hwm


def _cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def classify(root: int, table: dict[int, tuple[int, int]], cmdline: Any = _cmdline) -> dict[int, str]:
    """Class of every descendant of ``root`` (and root), from {pid: (ppid, session)}."""
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    root_session = table[root][1] if root in table else None
    out: dict[int, str] = {}
    stack = [(root, "pytest")]
    while stack:
        pid, inherited = stack.pop()
        if pid != root and inherited != "runtime":
            if table[pid][1] != root_session:
                inherited = "runtime"
            elif inherited == "pytest":
                inherited = "pytest" if _EXECNET in cmdline(pid) else "helper"
        out[pid] = inherited
        stack.extend((c, inherited) for c in children.get(pid, ()))
    return out


class TreeSampler(threading.Thread):
    """Samples the tree under ``root`` until ``stop()``; ``result()`` gives the peaks in MiB."""

    def __init__(self, root: int, interval_s: float = 0.1) -> None:
        super().__init__(daemon=True, name="tree-sampler")
        self.root, self.interval_s = root, interval_s
        self._halt = threading.Event()
        self.samples = 0
        self.peak_sum_kb: dict[str, int] = dict.fromkeys(CLASSES, 0)
        self.peak_hwm_kb: dict[str, int] = dict.fromkeys(CLASSES, 0)
        self.root_hwm_kb = 0
        self.peak_tree_kb = 0

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval_s)

    def sample(self) -> None:
        table = {}
        for entry in os.scandir(PROC):
            if entry.name.isdigit():
                st = _stat(int(entry.name))
                if st is not None:
                    table[int(entry.name)] = st
        if self.root not in table:
            return
        sums: dict[str, int] = defaultdict(int)
        for pid, cls in classify(self.root, table).items():
            rss, hwm = _memory_kb(pid)
            sums[cls] += rss
            self.peak_hwm_kb[cls] = max(self.peak_hwm_kb[cls], hwm)
            if pid == self.root:
                self.root_hwm_kb = max(self.root_hwm_kb, hwm)
        for cls, kb in sums.items():
            self.peak_sum_kb[cls] = max(self.peak_sum_kb[cls], kb)
        self.peak_tree_kb = max(self.peak_tree_kb, sums["pytest"] + sums["helper"])
        self.samples += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def result(self) -> dict[str, Any]:
        mib = lambda kb: round(kb / 1024, 1)  # noqa: E731
        return {
            "harness_peak_rss_mib": mib(self.peak_sum_kb["pytest"]),
            "harness_tree_peak_rss_mib": mib(self.peak_tree_kb),
            "controller_hwm_mib": mib(self.root_hwm_kb),
            "largest_process_hwm_mib": {c: mib(self.peak_hwm_kb[c]) for c in CLASSES},
            "peak_sum_rss_mib": {c: mib(self.peak_sum_kb[c]) for c in CLASSES},
            "samples": self.samples, "interval_s": self.interval_s,
        }
