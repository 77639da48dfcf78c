"""The runtimes benchmarks/bench_scale.py measures: which are installed here and how each is booted.

    hf      this interpreter (or $HARNESS_PYTHON_HF, or --runtime-python hf=PATH)
    sglang  --runtime-python sglang=PATH, else $HARNESS_PYTHON_SGLANG, else the pinned venv of
            harness.boot.venvs (`python -m harness.boot.venvs sglang`); on the CPU it is booted with the named
            workaround sglang-cpu-rotary-shim (RUNTIME-NOTES: without it SGLang does not load on CPU)

A runtime whose interpreter is absent is skipped with one line saying where it was looked for.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import final

from harness.boot import venvs
from harness.boot.shmsweep import in_shm, orphans_since, sweep
from harness.config.options import HarnessOptions

KNOWN = ("hf", "sglang")
CPU_WORKAROUNDS: Mapping[str, tuple[str, ...]] = {"sglang": ("sglang-cpu-rotary-shim",)}


@final
@dataclasses.dataclass(frozen=True)
class BenchRuntime:
    """A runtime to measure, or why it is skipped (``python`` None)."""

    name: str
    python: str | None
    absent: str = ""
    workarounds: tuple[str, ...] = ()

    def options(self, out: Path) -> HarnessOptions:
        """Harness options booting this runtime on the CPU, logs under ``out``."""
        assert self.python is not None, self.absent
        return HarnessOptions(out_dir=out, runtimes=(self.name,), devices=("cpu",), models=(), offload_modes=("none",),
                              dtypes=("float32",), tps=(1,), runtime_python={self.name: self.python},
                              boot_timeout_s=None, workarounds=self.workarounds)


def parse_pythons(items: Sequence[str]) -> dict[str, str]:
    """``["sglang=/venv/bin/python"]`` -> ``{"sglang": "/venv/bin/python"}``; a bad item raises ValueError."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--runtime-python takes NAME=PATH (e.g. sglang=/venvs/sglang/bin/python), got {item!r}")
        out[name] = path
    return out


def resolve(names: Sequence[str], pythons: Mapping[str, str], environ: Mapping[str, str] | None = None,
            pinned: Mapping[str, Path] | None = None) -> list[BenchRuntime]:
    """Each named runtime with its interpreter, or with why it is skipped.

    ``pinned``: where harness.boot.venvs keeps each runtime's venv (default: its python_path).
    """
    env = os.environ if environ is None else environ
    out = []
    for name in names:
        given = pythons.get(name) or env.get(f"HARNESS_PYTHON_{name.upper()}")
        if name == "hf":
            out.append(BenchRuntime("hf", given or sys.executable))
            continue
        where = Path(given) if given else (pinned or {}).get(name) or venvs.python_path(name)
        if not where.exists():
            how = "given" if given else "pinned venv"
            out.append(BenchRuntime(name, None, f"{name}: skipped, not installed here (no interpreter at {where}, "
                                                f"{how}; `python -m harness.boot.venvs {name}` or --runtime-python {name}=PATH)"))
            continue
        out.append(BenchRuntime(name, str(where), workarounds=CPU_WORKAROUNDS.get(name, ())))
    return out


def error_line(log_tail: str, fallback: str) -> str:
    """The line of a runtime's log tail that names its error (the last ``...Error: ...`` line), else ``fallback``.

    >>> error_line("Traceback ...\\n  File x\\nModuleNotFoundError: No module named 'vllm'\\n", "crashed")
    "ModuleNotFoundError: No module named 'vllm'"
    """
    lines = [ln.strip() for ln in log_tail.splitlines() if ln.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if ":" in line and head.endswith(("Error", "Exception", "Killed")):
            return line[:300]
    return fallback[:300]


def remove_leftovers(held: set[str], before: set[str], root: Path = Path("/dev/shm"),
                     proc: Path = Path("/proc")) -> list[str]:
    """Unlink what a stopped runtime left in /dev/shm; the names removed.

    SGLang 0.5.23 is killed before it unlinks its ``sglang_loads_*.shm`` slot file and the
    ``sem.mp-*`` semaphores of its multiprocessing locks (its resource tracker, which would unlink
    them, ignores SIGTERM and is killed), under random names. Its own: those its processes ``held``
    just before the stop, and those of these families not in ``before`` (listed just before it
    booted), which it made and let go of meanwhile (harness.boot.shmsweep, which ServerProcess.stop already
    applies: what this finds is what the stop missed). Any that a live process holds is kept; an
    orphan another program leaked during the same seconds cannot be told apart and goes too.
    """
    return sweep(in_shm(held, root) | orphans_since(before, root), root, proc)
