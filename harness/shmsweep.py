"""What a stopped runtime leaves in /dev/shm: files its processes held that nobody holds any more.

SGLang 0.5.23 kills its own process tree (resource tracker included) when it shuts down, so the
``sem.mp-*`` semaphores of its multiprocessing locks and its ``sglang_loads_*.shm`` slot file are
never unlinked. ``held_by`` lists what a runtime's processes have mapped or open just before the
stop; ``orphans_since`` adds the files of the ``TRANSIENT`` families (multiprocessing semaphores,
SGLang's slot files: never meant to outlive their holders) that appeared while it ran; ``sweep`` unlinks those that no live process
holds after the stop. Other names in /dev/shm are never touched.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SHM = Path("/dev/shm")
# Never meant to outlive their holders: Python multiprocessing's named semaphores, and SGLang's load
# snapshot slot file (left when a boot crashes before the stop could see who held it).
TRANSIENT = ("sem.mp-", "sglang_loads_")


def shm_names(root: Path = SHM) -> set[str]:
    """Names in ``root`` now."""
    try:
        return {e.name for e in os.scandir(root)}
    except OSError:
        return set()


def orphans_since(before: set[str] | None, root: Path = SHM) -> set[str]:
    """Files of the ``TRANSIENT`` families that appeared in ``root`` since ``before`` was listed."""
    if before is None:
        return set()
    return {n for n in shm_names(root) - before if n.startswith(TRANSIENT)}


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
