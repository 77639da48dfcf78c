"""Progress lines: cells that ran keep their line; cells that never ran fold into one line per reason."""
from __future__ import annotations

from harness.plugin.progress import CellProgress

CHECKS = ("accuracy", "weight_parity", "logprob_parity")


def _feed(progress: CellProgress, cell: str, statuses: tuple[str, ...], reasons: tuple[str, ...]) -> None:
    for check, status, reason in zip(CHECKS, statuses, reasons):
        progress.record({"cell": cell, "check": check, "status": status, "reason": reason})


def test_skipped_cells_fold_by_reason_and_cells_that_ran_keep_their_line():
    lines: list[str] = []
    progress = CellProgress(lines.append)
    skipped = [f"hf-npu-m{i}-none" for i in range(20)]
    progress.expect([c for c in ["hf-cpu-a-none", "hf-cpu-a-cpu", *skipped] for _ in CHECKS])
    _feed(progress, "hf-cpu-a-none", ("pass", "pass", "fail"), ("", "", "parity: x"))
    _feed(progress, "hf-cpu-a-cpu", ("na",) * 3, ("cpu offload on the cpu",) * 3)
    for cell in skipped:  # two checks skipped for the device, one N/A: folded under the most common reason
        _feed(progress, cell, ("skipped", "na", "skipped"), ("no NPU device", "weights unreadable", "no NPU device"))
    assert len(lines) == 1 and "hf-cpu-a-none" in lines[0] and "1 fail, 2 pass" in lines[0]
    progress.pytest_sessionfinish()
    assert lines[1:] == ["[harness]  20 cells skipped: no NPU device", "[harness]   1 cell N/A: cpu offload on the cpu"]


def test_cells_refused_by_the_preflight_get_no_line_but_a_boot_crash_keeps_its_line():
    lines: list[str] = []
    progress = CellProgress(lines.append)
    progress.expect([c for c in ("sglang-cpu-a-none", "sglang-cpu-b-none", "hf-cpu-a-none") for _ in CHECKS])
    for cell in ("sglang-cpu-a-none", "sglang-cpu-b-none"):
        _feed(progress, cell, ("error",) * 3, ("preflight: python /v cannot `import sglang`",) * 3)
    _feed(progress, "hf-cpu-a-none", ("error",) * 3, ("boot-crash: ValueError: bad config (exit code 1)",) * 3)
    progress.pytest_sessionfinish()
    assert len(lines) == 1 and "hf-cpu-a-none" in lines[0] and "3 error" in lines[0]
    assert progress.done == 3
