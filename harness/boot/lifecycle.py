"""Runtime processes: start, wait until ready, tear the whole tree down, keep the log."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import requests

from harness.boot.shmsweep import held_by, held_inodes, in_shm, orphans_since, shm_names, sweep, with_inodes
from harness.causes import root_cause
from harness.errors import ReadinessTimeout, RuntimeStartError
from harness.redact import Redactor
from harness.redact_files import redact_file
from harness.runtimes.base import LaunchSpec

LOG_TAIL_LINES = 60
POLL_S = 0.05  # readiness poll period: one cheap GET; a longer period is dead time after every boot


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free right now (bind to port 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, secrets masked ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return Redactor.from_sources(os.environ).mask("\n".join(data.splitlines()[-lines:]))


class ServerProcess:
    """One runtime process in its own session, so its whole tree can be signalled at once."""

    def __init__(self, spec: LaunchSpec) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | None = None
        self.boot_s: float | None = None
        self.launched_at: float | None = None  # time.time() of launch()
        self._t0 = 0.0
        self._stopped = False
        self._shm_before: set[str] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, is_ready: Callable[[], bool] | None = None, poll_s: float = POLL_S) -> float:
        """Launch and block until ready; returns boot seconds. Raises RuntimeStartError subclasses."""
        self.launch()
        return self.wait_ready(is_ready, poll_s)

    def launch(self) -> None:
        """Start the process and return at once; it boots while the caller does other work.

        Call from the thread that will outlive the runtime (the main thread): the kernel sends
        the runtime SIGTERM when the launching *thread* ends (PR_SET_PDEATHSIG).
        """
        self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._t0 = time.monotonic()
        self.launched_at = time.time()
        self._shm_before = shm_names()  # orphaned semaphores that appear while it runs are its own
        with self.spec.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self.spec.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                list(self.spec.argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(self.spec.env), cwd=self.spec.cwd, start_new_session=True, preexec_fn=_die_with_parent,
            )
        _LIVE[self.proc.pid] = self

    def wait_ready(self, is_ready: Callable[[], bool] | None = None, poll_s: float = POLL_S) -> float:
        """Block until the launched process answers; returns seconds since launch."""
        if self.proc is None:
            raise RuntimeError("wait_ready() before launch()")
        if self.boot_s is not None:
            return self.boot_s
        check = is_ready or self._http_ready
        # The budget counts from when the caller starts waiting: a runtime launched ahead of its
        # turn must not use it up while the previous cell is still being checked.
        deadline = time.monotonic() + self.spec.boot_timeout_s
        while True:
            code = self.proc.poll()
            if code is not None:
                self.stop()
                log_tail = tail(self.spec.log_path)
                raise RuntimeStartError("boot-crash", self.spec.cell_id, _crash_detail(code, log_tail),
                                        self.spec.log_path, log_tail)
            if check():
                self.boot_s = time.monotonic() - self._t0
                return self.boot_s
            if time.monotonic() > deadline:
                self.stop()
                raise ReadinessTimeout(self.spec.cell_id,
                                       f"not ready at {self.spec.ready_url} after {self.spec.boot_timeout_s:.0f}s "
                                       "(raise the runtime's boot timeout with --boot-timeout if it is just slow)",
                                       self.spec.log_path, tail(self.spec.log_path))
            time.sleep(poll_s)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_description(self, wait_s: float = 0.0) -> str | None:
        """How the process ended, or None while it runs (after waiting up to ``wait_s`` for it to end)."""
        if self.proc is None:
            return None
        try:
            self.proc.wait(timeout=wait_s) if wait_s else self.proc.poll()
        except subprocess.TimeoutExpired:
            return None
        return None if self.proc.returncode is None else _describe_exit(self.proc.returncode)

    def stop(self, grace_s: float = 10.0) -> None:
        """TERM the process group and every descendant, wait, then KILL what is left (once: a
        second call must not signal a pid the kernel may have handed to another process)."""
        if self.proc is None or self._stopped:
            return
        self._stopped = True
        pids = {self.proc.pid} | descendants(self.proc.pid)
        shm = in_shm(held_by(pids)) | with_inodes(held_inodes(pids))  # what it may leave in /dev/shm (SGLang kills its own tracker)
        _signal_all(self.proc.pid, pids, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _any_alive(pids):
            self.proc.poll()
            time.sleep(0.1)
        if _any_alive(pids):
            _kill_leaving_trackers(self.proc.pid, pids)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _LIVE.pop(self.proc.pid, None)
        sweep(shm | orphans_since(self._shm_before))
        redact_log(self.spec)

    def _http_ready(self) -> bool:
        try:
            return requests.get(self.spec.ready_url, timeout=2).status_code == 200
        except requests.RequestException:
            return False


_LIVE: dict[int, ServerProcess] = {}
"""Every runtime this process launched and has not stopped yet, by pid: the one process-wide state here.

A boot's own ExitStack stops its runtime (harness/boot/cellrun.py); this registry is only for
``stop_all``, the backstop at ``pytest_unconfigure``, which cannot reach every owner: runtimes are
also booted by code that holds no session (the reference store and SGLang's layer dump, from inside
a check), and an owner may never close its stack (a fixture generator left suspended by an internal
error, a stack whose closing a second Ctrl-C cut short). Each ``ServerProcess`` adds itself on
``launch`` and removes itself once stopped.
"""


def redact_log(spec: LaunchSpec) -> None:
    """Mask the secrets of the runtime's environment (and secret-shaped text) in its stopped log."""
    try:
        redact_file(spec.log_path, Redactor.from_sources(os.environ, dict(spec.env)))
    except OSError:
        pass  # the run directory's sweep at the end of the run masks it again


def stop_all() -> int:
    """Backstop for interrupts: stop every process this Python started and did not stop yet (see ``_LIVE``)."""
    servers = list(_LIVE.values())
    for s in servers:
        s.stop(grace_s=5.0)
    return len(servers)


def reap(env_key: str, env_value: str, grace_s: float = 5.0) -> list[int]:
    """Stop every process (and its tree) whose environment holds ``env_key=env_value``.

    Runtimes are tagged with HARNESS_OUT=<run dir>; this finds any that outlived their owner
    (an xdist worker killed on Ctrl-C, a crashed run) and ends them. Returns the pids found.
    """
    found = processes_with_env(env_key, env_value)
    pids = set(found)
    for pid in found:
        pids |= descendants(pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _any_alive(pids):
            time.sleep(0.1)
        if not _any_alive(pids):
            break
    return found


def processes_with_env(key: str, value: str) -> list[int]:
    """Live (non-zombie) pids, other than this one, whose environment holds key=value."""
    needle = f"{key}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and _any_alive({int(entry.name)}):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _resolve_prctl():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _resolve_prctl()  # resolved here: the child between fork and exec must not import anything


def _die_with_parent() -> None:
    """In the child before exec: ask the kernel for SIGTERM when the launching thread dies."""
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def descendants(pid: int) -> set[int]:
    """All live descendants of pid, read from /proc (children that left the session too)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _kill_leaving_trackers(leader: int, pids: set[int], tracker_grace_s: float = 5.0) -> None:
    """KILL what ignored the TERM, Python's resource trackers last: a tracker ignores TERM by design and
    unlinks the semaphores and shared memory its clients leaked (SGLang's ``/dev/shm/sem.mp-*``) once
    they are gone, so it gets a moment to do that before it is killed too."""
    trackers = {p for p in pids if _is_resource_tracker(p)}
    for pid in pids - trackers:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + tracker_grace_s
    while trackers and time.monotonic() < deadline and _any_alive(trackers):
        time.sleep(0.05)
    _signal_all(leader, pids, signal.SIGKILL)


def _is_resource_tracker(pid: int) -> bool:
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _signal_all(leader: int, pids: set[int], sig: signal.Signals) -> None:
    try:
        os.killpg(leader, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _any_alive(pids: set[int]) -> bool:
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            return True
    return False


def _crash_detail(code: int, log_tail: str) -> str:
    """The root cause read from the log (its last exception line) and how the process ended.

    ``"ModuleNotFoundError: No module named 'vllm' (exit code 1)"``; without an exception line in
    the log: ``"process exited with exit code 1 during boot"``.
    """
    cause = root_cause(log_tail)
    return f"{cause} ({_describe_exit(code)})" if cause else f"process exited with {_describe_exit(code)} during boot"


def _describe_exit(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (killed by SIGKILL: often the kernel's OOM killer; check `dmesg` and memory limits)" if code == -9 else ""
        return f"signal {name}{hint}"
    return f"exit code {code}"


def argv_for_display(argv: Sequence[str]) -> str:
    """The command line as one readable string (for reports; never executed)."""
    return " ".join(a if a and " " not in a else repr(a) for a in argv)
