"""A stand-in process for lifecycle tests: serves /health, crashes, hangs or spawns children."""
from __future__ import annotations

import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    mode, port = sys.argv[1], int(sys.argv[2])
    print(f"fake server mode={mode}", flush=True)
    if mode == "crash":
        print("Traceback (most recent call last):\nModuleNotFoundError: No module named 'vllm'", flush=True)
        sys.exit(3)
    if mode == "hang":
        time.sleep(3600)
    if mode == "slow":  # ready about 2 s after start
        time.sleep(2.0)
    if mode in ("spawn", "spawn-detached"):
        detach = mode == "spawn-detached"
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"], start_new_session=detach)
        print(f"child pid {child.pid}", flush=True)
    if mode in ("ignore-term", "semaphore"):
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if mode == "shm-file":  # a file in /dev/shm held open, never unlinked: dies with it (like SGLang's slot file)
        import os

        held = open(f"/dev/shm/harness-test-{os.getpid()}.shm", "wb")
        print(f"semaphore {held.name}", flush=True)
    if mode == "orphan-semaphore":  # made by a helper that dies without cleanup, its tracker killed: what SGLang leaves
        code = ("import multiprocessing as m, os, signal; from multiprocessing import resource_tracker as rt; "
                "lock = m.get_context('spawn').Lock(); print(lock._semlock.name, flush=True); "
                "os.kill(rt._resource_tracker._pid, signal.SIGKILL); os._exit(0)")
        name = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip().lstrip("/")
        print(f"semaphore /dev/shm/sem.{name}", flush=True)
    if mode == "semaphore":  # like SGLang: a named semaphore in /dev/shm, which Python's resource tracker unlinks
        import multiprocessing

        lock = multiprocessing.get_context("spawn").Lock()
        print(f"semaphore /dev/shm/sem.{lock._semlock.name.lstrip('/')}", flush=True)
    HTTPServer(("127.0.0.1", port), Health).serve_forever()


if __name__ == "__main__":
    main()
