"""benchmarks/bench_scale.py's logic: which runtimes it measures, what it cleans up, how it adds up memory.

No runtime is booted and nothing is timed (the benchmark itself prints its figures).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from benchmarks.scale_limits import descendants, tree_peak_mb
from benchmarks.scale_runtimes import error_line, parse_pythons, remove_leftovers, resolve
from harness.boot.shmsweep import held_by


def test_an_absent_runtime_is_skipped_with_where_it_was_looked_for(tmp_path: Path) -> None:
    hf, sglang = resolve(["hf", "sglang"], {}, environ={}, pinned={"sglang": tmp_path / "nope" / "python"})
    assert hf.python == sys.executable and hf.workarounds == ()
    assert sglang.python is None
    assert str(tmp_path / "nope" / "python") in sglang.absent and "--runtime-python sglang=PATH" in sglang.absent


def test_a_given_sglang_interpreter_is_used_with_its_cpu_workaround(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.touch()
    (sglang,) = resolve(["sglang"], {"sglang": str(python)}, environ={}, pinned={})
    assert sglang.python == str(python) and sglang.workarounds == ("sglang-cpu-rotary-shim",)
    assert sglang.options(tmp_path).runtime_python == {"sglang": str(python)}
    (from_env,) = resolve(["sglang"], {}, environ={"HARNESS_PYTHON_SGLANG": str(python)}, pinned={})
    assert from_env.python == str(python)


def test_runtime_python_items_are_name_equals_path() -> None:
    assert parse_pythons(["sglang=/v/bin/python"]) == {"sglang": "/v/bin/python"}
    with pytest.raises(ValueError, match="NAME=PATH"):
        parse_pythons(["/v/bin/python"])


def test_the_error_line_of_a_boot_that_failed() -> None:
    tail = "Traceback (most recent call last):\n  File \"x.py\", line 1\nModuleNotFoundError: No module named 'vllm'\n"
    assert error_line(tail, "crashed") == "ModuleNotFoundError: No module named 'vllm'"
    assert error_line("nothing useful\n", "exited with code 1") == "exited with code 1"


def fake_process(proc: Path, pid: int, ppid: int, hwm_kb: int = 0, maps: str = "", fds: dict[str, str] | None = None) -> None:
    d = proc / str(pid)
    (d / "fd").mkdir(parents=True)
    (d / "stat").write_text(f"{pid} (py thon) S {ppid} {pid} {pid} 0 -1\n")
    (d / "status").write_text(f"Name:\tpython\nVmHWM:\t{hwm_kb} kB\nVmRSS:\t1 kB\n")
    (d / "maps").write_text(maps)
    for fd, target in (fds or {}).items():
        (d / "fd" / fd).symlink_to(target)


def test_runtime_peak_is_the_sum_over_its_process_tree_only(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    fake_process(proc, 10, 1, hwm_kb=1000)  # the runtime
    fake_process(proc, 11, 10, hwm_kb=2000)  # its scheduler
    fake_process(proc, 12, 11, hwm_kb=500)  # and one under that
    fake_process(proc, 20, 1, hwm_kb=9999)  # someone else
    assert sorted(descendants(10, proc)) == [10, 11, 12]
    mb, count = tree_peak_mb(10, proc)
    assert count == 3 and mb == pytest.approx(3500 * 1024 / 1e6)


def test_leftovers_removed_are_the_runtimes_own_or_new_since_its_boot_and_held_by_nobody(tmp_path: Path) -> None:
    shm, proc = tmp_path / "shm", tmp_path / "proc"
    shm.mkdir()
    for name in ("sem.mp-older-orphan", "sglang_loads_older.shm", "x"):
        (shm / name).touch()
    before = {p.name for p in shm.iterdir()}  # before the boot
    for name in ("sglang_loads_mine.shm", "sem.mp-held", "sem.mp-let-go", "sglang_loads_open.shm", "not-a-leak-family"):
        (shm / name).touch()
    fake_process(proc, 10, 1, maps=f"7f00-7f01 rw-s 00000000 00:1a 42 {shm / 'sem.mp-held'} (deleted)\n",
                 fds={"3": str(shm / "sglang_loads_mine.shm"), "4": str(shm / "sglang_loads_open.shm")})
    held = held_by([10], proc)  # just before the stop
    (shm / "sem.mp-made-at-stop").touch()
    fake_process(proc, 20, 1, fds={"3": str(shm / "sglang_loads_open.shm")})  # another live runtime
    shutil.rmtree(proc / "10")  # the runtime is gone
    removed = remove_leftovers(held, before, shm, proc)
    assert removed == ["sem.mp-held", "sem.mp-let-go", "sem.mp-made-at-stop", "sglang_loads_mine.shm"]
    assert sorted(p.name for p in shm.iterdir()) == ["not-a-leak-family", "sem.mp-older-orphan",
                                                     "sglang_loads_older.shm", "sglang_loads_open.shm", "x"]
