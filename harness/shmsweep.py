"""What a stopped runtime leaves in /dev/shm: files its processes held that nobody holds any more.

SGLang 0.5.23 kills its own process tree (resource tracker included) when it shuts down, so the
``sem.mp-*`` semaphores of its multiprocessing locks and its ``sglang_loads_*.shm`` slot file are
never unlinked. ``held_by`` lists what a runtime's processes have mapped or open just before the
stop; ``sweep`` unlinks those of them in /dev/shm that no live process holds after it.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SHM = Path("/dev/shm")


def held_by(pids: Iterable[int] | None, proc: Path = Path("/proc")) -> set[str]:
    """Paths the processes ``pids`` (None: every live process) have mapped or open."""
    seen: set[str] = set()
    for pid in pids if pids is not None else [int(e.name) for e in os.scandir(proc) if e.name.isdigit()]:
        try:
            seen.update(line.split(None, 5)[5].removesuffix(" (deleted)")
                        for line in (proc / str(pid) / "maps").read_text().splitlines() if len(line.split(None, 5)) == 6)
            seen.update(os.readlink(f) for f in (proc / str(pid) / "fd").iterdir())
        except OSError:
            continue
    return seen


def in_shm(paths: Iterable[str], root: Path = SHM) -> set[str]:
    """The names among ``paths`` that are files directly in ``root``."""
    return {Path(p).name for p in paths if Path(p).parent == root}


def sweep(names: Iterable[str], root: Path = SHM, proc: Path = Path("/proc")) -> list[str]:
    """Unlink the files ``names`` of ``root`` that no live process holds; the names removed."""
    names = sorted(set(names))
    if not names:
        return []
    live = held_by(None, proc)
    removed = []
    for name in names:
        if str(root / name) not in live:
            try:
                (root / name).unlink()
                removed.append(name)
            except FileNotFoundError:
                pass
    return removed
