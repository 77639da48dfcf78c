"""Test-only failure injection for the hf reference runtime (the real server, failing on purpose).

``HARNESS_HF_CHAOS="<cell-pattern>=<mode>[;...]"`` picks a mode for cells whose id (HARNESS_CELL)
matches the fnmatch pattern. Modes reproduce what runtimes do on new hardware:

- ``crash_on_boot``: print a traceback and exit 3 before serving;
- ``crash_on_boot_once``: the same, on the cell's first boot only (needs HARNESS_HF_CHAOS_STATE): a flake;
- ``hang_on_boot``: never start serving (readiness never succeeds);
- ``kill_on_generate``: SIGKILL itself on the first /generate (a crash mid-check);
- ``oom_on_generate``: the same signal the kernel's OOM killer sends, after a line saying so;
- ``port_taken_once``: the first boot of the cell finds its port taken (a real EADDRINUSE).

``HARNESS_HF_ECHO_SECRETS=1`` (any mode, or none) makes the server print the values of its
secret-looking environment variables (``HF_TOKEN``, ``*_KEY``, ``*_TOKEN``, ``*_SECRET``) when it starts,
bare and as ``name: value``, as careless runtimes do: the harness must mask them in its files.

Standalone: imported by hf_server.py from its own directory, stdlib only.
"""
from __future__ import annotations

import fnmatch
import os
import signal
import socket
import sys
import time

CHAOS_ENV = "HARNESS_HF_CHAOS"
STATE_ENV = "HARNESS_HF_CHAOS_STATE"
MODES = ("crash_on_boot", "crash_on_boot_once", "hang_on_boot", "kill_on_generate", "oom_on_generate", "port_taken_once")


def mode() -> str | None:
    """The chaos mode for this cell, or None."""
    cell = os.environ.get("HARNESS_CELL", "")
    for rule in filter(None, os.environ.get(CHAOS_ENV, "").split(";")):
        pattern, _, name = rule.partition("=")
        if name not in MODES:
            raise SystemExit(f"{CHAOS_ENV}: unknown mode {name!r}; known: {', '.join(MODES)}")
        if fnmatch.fnmatchcase(cell, pattern):
            return name
    return None


def before_serving(host: str, port: int) -> socket.socket | None:
    """Apply boot-time chaos; returns a socket that keeps the port taken, if any."""
    chosen = mode()
    # like a real crash log: markup from model code, config echoed with secrets
    if chosen == "crash_on_boot" or (chosen == "crash_on_boot_once" and _first_time("boot")):
        print(f"config: hf_token={os.environ.get('HF_TOKEN', '')} note=<script>alert('log')</script>", file=sys.stderr)
        print("Traceback (most recent call last):\n  File \"model_loader.py\", line 1\n"
              "ModuleNotFoundError: No module named 'sgl_kernel'", file=sys.stderr, flush=True)
        sys.exit(3)
    if chosen == "hang_on_boot":
        while True:
            time.sleep(3600)
    if chosen == "port_taken_once" and _first_time("port"):
        thief = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        thief.bind((host, port))
        thief.listen()
        return thief
    return None


ECHO_ENV = "HARNESS_HF_ECHO_SECRETS"


def echo_secrets() -> None:
    """Print secret-looking environment values, bare and labelled, on stdout and stderr."""
    for name, value in sorted(os.environ.items()):
        upper = name.upper()
        if value and (upper == "HF_TOKEN" or upper.endswith(("_KEY", "_TOKEN", "_SECRET"))):
            print(f"auth: trying credential {value} from the environment", flush=True)
            print(f"{name.lower()}: {value}", file=sys.stderr, flush=True)


def on_generate() -> None:
    """Apply request-time chaos."""
    chosen = mode()
    if chosen == "oom_on_generate":
        print("Out of memory: Killed process (simulated kernel OOM kill)", file=sys.stderr, flush=True)
    if chosen in ("kill_on_generate", "oom_on_generate"):
        os.kill(os.getpid(), signal.SIGKILL)


def _first_time(tag: str) -> bool:
    state = os.environ.get(STATE_ENV)
    if not state:
        return True
    marker = os.path.join(state, f"{os.environ.get('HARNESS_CELL', 'cell')}.{tag}")
    if os.path.exists(marker):
        return False
    open(marker, "w").close()
    return True


if os.environ.get(ECHO_ENV):  # at import, i.e. as the server boots, before any chaos mode applies
    echo_secrets()
