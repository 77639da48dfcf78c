"""Stop a child started with ``start_new_session=True`` and everything it started (standard library only)."""
from __future__ import annotations

import os
import signal
import subprocess


def stop_group(proc: subprocess.Popen, first: int = signal.SIGTERM, grace_s: float = 5.0) -> None:
    """Send ``first`` to the child's process group, wait ``grace_s``, then SIGKILL it and reap the child."""
    for sig in (first, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()
