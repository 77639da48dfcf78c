"""Where a cell's tensors cross from the runtime to the harness in shared memory: a tmpfs directory.

The cell's scratch directory when it is on tmpfs, else a directory of its own in ``/dev/shm``
(``harness-xfer-<harness pid>-<random>``), removed at teardown like the scratch directory. One
left by a harness that was killed (SIGKILL: no teardown ran) is removed by the next harness that
makes one, since its pid is no longer alive. ``HARNESS_WEIGHT_TRANSFER=socket`` turns shared
memory off (tensors then travel over the HTTP connection, as they do for a remote runtime).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from harness.errors import ConfigError

TransferMode = Literal["shm", "socket"]
MODE_ENV = "HARNESS_WEIGHT_TRANSFER"
SHM_ROOT = Path("/dev/shm")
PREFIX = "harness-xfer-"
TMPFS_TYPES = frozenset({"tmpfs", "ramfs"})


def transfer_mode(env: dict[str, str] | None = None) -> TransferMode:
    """``shm`` (default) or ``socket``, from HARNESS_WEIGHT_TRANSFER."""
    value = (os.environ if env is None else env).get(MODE_ENV, "shm").strip().lower() or "shm"
    if value not in ("shm", "socket"):
        raise ConfigError(f"{MODE_ENV}={value!r} is not a transfer mode; use 'shm' (shared memory where the "
                          f"runtime shares this host's tmpfs, the default) or 'socket' (always over HTTP)")
    return value  # type: ignore[return-value]


def fs_type(path: Path) -> str | None:
    """The filesystem type of the mount holding ``path`` (from /proc/mounts), None where unknown."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    best: tuple[int, str | None] = (-1, None)  # (mount point length, its type): the longest wins
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > best[0]:
            best = (len(point), parts[2])
    return best[1]


def make_xfer_dir(workdir: Path, mode: TransferMode | None = None) -> Path | None:
    """A tmpfs directory for the cell's transfers, or None (no tmpfs here, or mode socket)."""
    if (mode or transfer_mode()) == "socket":
        return None
    if fs_type(workdir) in TMPFS_TYPES:
        path = workdir / "xfer"
        path.mkdir(mode=0o700, exist_ok=True)
        return path
    if not SHM_ROOT.is_dir() or fs_type(SHM_ROOT) not in TMPFS_TYPES or not os.access(SHM_ROOT, os.W_OK):
        return None
    sweep_stale(SHM_ROOT)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=SHM_ROOT))


def remove_xfer_dir(path: Path | None) -> None:
    """Remove a transfer directory and whatever a runtime left in it (safe to call twice)."""
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def sweep_stale(root: Path) -> list[Path]:
    """Remove ``harness-xfer-<pid>-*`` directories under ``root`` whose harness process is gone."""
    removed = []
    for entry in root.glob(f"{PREFIX}*"):
        pid = entry.name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)) and _ours(entry):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _ours(entry: Path) -> bool:
    try:
        st = entry.lstat()
    except OSError:
        return False
    return entry.is_dir() and not entry.is_symlink() and st.st_uid == os.getuid()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
