"""Boot lines come from the runtime hooks: once per boot, and "(ahead, ...)" while another cell's runtime is up."""
from __future__ import annotations

from types import SimpleNamespace

from harness.config.matrix import Cell
from harness.plugin.progress import CellProgress

A, B, C = (Cell("hf", "cpu", "tiny-llama", offload) for offload in ("none", "disk", "cpu"))
AHEAD = " (ahead, while the current cell is checked)"


def _ready(progress: CellProgress, cell: Cell) -> None:
    progress.pytest_harness_runtime_ready(runtime=SimpleNamespace(cell=cell, boot_s=1.0))


def test_a_boot_while_another_runtime_is_up_is_one_ahead_and_a_port_retry_prints_nothing() -> None:
    lines: list[str] = []
    progress = CellProgress(lines.append)
    progress.pytest_harness_runtime_booting(cell=A, attempt=1)
    progress.pytest_harness_runtime_booting(cell=A, attempt=2)  # the port was taken: the same boot, retried
    _ready(progress, A)
    progress.pytest_harness_runtime_booting(cell=B, attempt=1)  # launched while A is checked
    progress.pytest_harness_runtime_stopped(cell=A)
    _ready(progress, B)  # B's fixture finishes the boot launched ahead: no second line
    progress.pytest_harness_runtime_stopped(cell=B)
    progress.pytest_harness_runtime_booting(cell=C, attempt=1)  # nothing up: booted when its turn came
    assert lines == [f"[harness] booting  {A.id}", f"[harness] booting  {B.id}{AHEAD}", f"[harness] booting  {C.id}"]


def test_an_abandoned_boot_ahead_leaves_no_runtime_up() -> None:
    lines: list[str] = []
    progress = CellProgress(lines.append)
    progress.pytest_harness_runtime_booting(cell=A, attempt=1)
    _ready(progress, A)
    progress.pytest_harness_runtime_booting(cell=B, attempt=1)
    progress.pytest_harness_runtime_stopped(cell=B)  # abandoned: it never got ready
    progress.pytest_harness_runtime_stopped(cell=A)
    progress.pytest_harness_runtime_booting(cell=C, attempt=1)
    assert progress.up == set() and lines[-1] == f"[harness] booting  {C.id}"
