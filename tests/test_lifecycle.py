"""Runtime processes with real subprocesses: readiness, boot failures, whole-tree teardown."""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

from harness.boot.lifecycle import LaunchSpec, ServerProcess, descendants, free_port, tail
from harness.errors import ReadinessTimeout, RuntimeStartError

FAKE = Path(__file__).with_name("data") / "fake_server.py"


def spec(tmp_path: Path, mode: str, timeout: float = 20.0) -> LaunchSpec:
    port = free_port()
    return LaunchSpec(cell_id=f"fake-cpu-m-{mode}", argv=(sys.executable, str(FAKE), mode, str(port)),
                      env=dict(os.environ), ready_url=f"http://127.0.0.1:{port}/health",
                      log_path=tmp_path / "logs" / f"{mode}.log", boot_timeout_s=timeout)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_boot_then_stop_removes_the_process(tmp_path):
    server = ServerProcess(spec(tmp_path, "ok"))
    assert server.start() > 0
    pid = server.pid
    assert alive(pid)
    server.stop()
    assert not alive(pid)
    assert "fake server mode=ok" in tail(server.spec.log_path)


@pytest.mark.parametrize("mode", ["spawn", "spawn-detached"])
def test_stop_kills_children_even_those_that_left_the_session(tmp_path, mode):
    server = ServerProcess(spec(tmp_path, mode))
    server.start()
    kids = descendants(server.pid)
    assert kids, "the fake server should have a child"
    server.stop()
    assert not any(alive(p) for p in kids | {server.pid})


def test_term_ignored_falls_back_to_kill(tmp_path):
    server = ServerProcess(spec(tmp_path, "ignore-term"))
    server.start()
    pid = server.pid
    server.stop(grace_s=1.0)
    assert not alive(pid)


def test_crash_during_boot_is_boot_crash_with_log_tail(tmp_path):
    server = ServerProcess(spec(tmp_path, "crash"))
    with pytest.raises(RuntimeStartError) as err:
        server.start()
    e = err.value
    assert e.kind == "boot-crash" and e.detail == "ModuleNotFoundError: No module named 'vllm' (exit code 3)"
    assert "No module named 'vllm'" in e.log_tail
    assert e.log_path == server.spec.log_path


def test_never_ready_is_boot_timeout_and_the_process_is_gone(tmp_path):
    server = ServerProcess(spec(tmp_path, "hang", timeout=1.5))
    with pytest.raises(ReadinessTimeout) as err:
        server.start()
    assert err.value.kind == "boot-timeout" and "--boot-timeout" in str(err.value)
    assert not alive(server.pid)


def test_log_starts_with_the_command(tmp_path):
    server = ServerProcess(spec(tmp_path, "ok"))
    server.start()
    server.stop()
    assert re.match(r"^\$ .*fake_server\.py ok \d+", server.spec.log_path.read_text())


def test_a_second_stop_signals_nothing(tmp_path, monkeypatch):
    """After a boot crash the process is stopped and reaped; stopping it again (as the caller's
    clean-up does) must not signal its pid, which the kernel may have handed to another process."""
    server = ServerProcess(spec(tmp_path, "crash"))
    with pytest.raises(RuntimeStartError):
        server.start()
    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    monkeypatch.setattr(os, "killpg", lambda pid, sig: sent.append((pid, sig)))
    server.stop()
    assert sent == []


def test_the_readiness_budget_counts_from_the_wait_not_the_launch(tmp_path):
    """A runtime launched ahead of its turn and ready by then is not failed for time spent waiting its turn."""
    import time

    server = ServerProcess(spec(tmp_path, "slow", timeout=1.5))  # ready ~2 s after launch
    server.launch()
    time.sleep(1.6)  # the previous cell is still being checked; its budget would be gone if counted from launch
    try:
        assert server.wait_ready() > 1.6  # boot seconds still count from the launch
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["semaphore", "shm-file", "orphan-semaphore"])
def test_a_stopped_runtime_leaves_nothing_it_held_in_dev_shm(tmp_path, mode):
    server = ServerProcess(spec(tmp_path, mode))
    server.start()
    log = server.spec.log_path
    for _ in range(100):  # the line comes once the lock exists
        found = re.search(r"semaphore (/dev/shm/\S+)", log.read_text())
        if found:
            break
        time.sleep(0.05)
    assert found, tail(log)
    sem = Path(found.group(1))
    assert sem.exists()
    # semaphore: TERM ignored, its tracker unlinks it; shm-file: held, swept after the stop;
    # orphan-semaphore: held by nobody, its tracker gone, swept as a semaphore that appeared while it ran
    server.stop(grace_s=1.0)
    assert not sem.exists()


def test_the_sweep_keeps_what_a_live_process_still_holds(tmp_path):
    import multiprocessing

    from harness.boot.shmsweep import sweep

    lock = multiprocessing.get_context("spawn").Lock()  # mapped under glibc's temporary name: held by inode only
    name = "sem." + lock._semlock.name.lstrip("/")
    assert Path("/dev/shm", name).exists()
    assert sweep([name]) == [] and Path("/dev/shm", name).exists()

    kept = Path(f"/dev/shm/harness-test-kept-{os.getpid()}.shm")
    with kept.open("wb"):
        assert sweep([kept.name]) == [] and kept.exists()
    assert sweep([kept.name]) == [kept.name] and not kept.exists()


def test_a_runtime_gets_a_short_tmpdir_of_its_own_removed_with_the_cell(tmp_path):
    import contextlib

    from harness.boot.cellrun import _runtime_tmpdir, remove_workdir

    workdir = tmp_path / "harness-sglang-npu-glm-4.7-flash-sharded_gpu-bf16-tp2-abcdefgh"  # a long cell id
    workdir.mkdir()
    with contextlib.ExitStack() as resources:  # a boot's stack: closing it removes the TMPDIR
        tmp = Path(_runtime_tmpdir(workdir, resources)["TMPDIR"])
        (tmp / "left-by-the-runtime").write_text("x")
    assert not tmp.exists()
    workdir = tmp_path / "another"
    workdir.mkdir()
    env = _runtime_tmpdir(workdir, contextlib.ExitStack())  # a stack never closed: remove_workdir follows the link
    tmp = Path(env["TMPDIR"])
    assert tmp.is_dir() and len(str(tmp / "0123e4567-e89b-12d3-a456-426614174000.sock")) < 108  # a ZMQ socket fits
    assert env["TORCHINDUCTOR_CACHE_DIR"] and not env["TORCHINDUCTOR_CACHE_DIR"].startswith(str(tmp))  # cache stays warm
    (tmp / "left-by-the-runtime").write_text("x")
    remove_workdir(workdir)
    assert not tmp.exists() and not workdir.exists()
