"""Find processes by a variable in their environment (the harness tags each runtime with HARNESS_OUT)."""
from __future__ import annotations

from pathlib import Path


def processes_with_env(key: str, value: str) -> list[int]:
    """Live (non-zombie) pids whose environment holds key=value."""
    needle = f"{key}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and needle in env.split(b"\0"):
            found.append(int(entry.name))
    return found
