"""What a stopped runtime leaves in /dev/shm: files its processes held that nobody holds any more.

SGLang 0.5.23 kills its own process tree (resource tracker included) when it shuts down, so the
``sem.mp-*`` semaphores of its multiprocessing locks and its ``sglang_loads_*.shm`` slot file are
never unlinked. ``held_by`` / ``held_inodes`` list what a runtime's processes have mapped or open
just before the stop; ``orphans_since`` adds the files of the ``TRANSIENT`` families that appeared
while it ran; ``sweep`` unlinks those that no live process holds after the stop, by path or by inode
(so a live semaphore of another program is never swept). Other names are never touched.
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
    return _holdings(pids, proc)[0]


def held_inodes(pids: Iterable[int] | None, proc: Path = Path("/proc")) -> set[int]:
    """Inodes of the files in /dev/shm that the processes ``pids`` (None: every live process) map or
    hold open. A named semaphore is mapped under the temporary name glibc created it with, so its
    final name never shows in /proc/PID/maps: its inode does."""
    return _holdings(pids, proc)[1]


def _holdings(pids: Iterable[int] | None, proc: Path) -> tuple[set[str], set[int]]:
    paths: set[str] = set()
    inodes: set[int] = set()
    for pid in pids if pids is not None else [int(e.name) for e in os.scandir(proc) if e.name.isdigit()]:
        try:
            for line in (proc / str(pid) / "maps").read_text().splitlines():
                fields = line.split(None, 5)
                if len(fields) == 6:
                    paths.add(fields[5].removesuffix(" (deleted)"))
                    if fields[5].startswith(f"{SHM}/") and fields[4].isdigit():
                        inodes.add(int(fields[4]))
            for fd in (proc / str(pid) / "fd").iterdir():
                target = os.readlink(fd)
                paths.add(target)
                if target.startswith(f"{SHM}/"):
                    inodes.add(os.stat(fd).st_ino)
        except OSError:
            continue
    return paths, inodes


def in_shm(paths: Iterable[str], root: Path = SHM) -> set[str]:
    """The names among ``paths`` that are files directly in ``root``."""
    return {Path(p).name for p in paths if Path(p).parent == root}


def with_inodes(inodes: set[int], root: Path = SHM) -> set[str]:
    """The names in ``root`` whose inode is one of ``inodes`` (a stopped runtime's semaphores)."""
    out = set()
    for name in shm_names(root):
        try:
            if os.stat(root / name).st_ino in inodes:
                out.add(name)
        except OSError:
            continue
    return out


def sweep(names: Iterable[str], root: Path = SHM, proc: Path = Path("/proc")) -> list[str]:
    """Unlink the files ``names`` of ``root`` that no live process holds (by path or by inode); the names removed."""
    names = sorted(set(names))
    if not names:
        return []
    live_paths, live_inodes = _holdings(None, proc)
    removed = []
    for name in names:
        try:
            if str(root / name) in live_paths or os.stat(root / name).st_ino in live_inodes:
                continue
            (root / name).unlink()
            removed.append(name)
        except FileNotFoundError:
            pass
    return removed
