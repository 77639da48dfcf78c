"""Root causes read from runtime logs, and failed cells grouped by cause (pure logic)."""
from __future__ import annotations

from harness.causes import CauseGroup, format_groups, group_failures, root_cause
from harness.results import ResultRecord

CRASH_LOG = """$ /v/bin/python -m vllm.entrypoints.openai.api_server --port 1
INFO 12-01 loading model
Traceback (most recent call last):
  File "/v/lib/python3.11/site-packages/sglang/srt/layers/rotary_embedding.py", line 12, in <module>
    from vllm._custom_ops import rotary_embedding
ModuleNotFoundError: No module named 'vllm'
[rank0] shutting down
"""


def test_the_last_exception_line_of_a_traceback_is_the_cause():
    assert root_cause(CRASH_LOG) == "ModuleNotFoundError: No module named 'vllm'"


def test_the_last_of_several_exceptions_wins_and_dotted_names_are_kept():
    log = ("ValueError: first\nDuring handling of the above exception, another exception occurred:\n"
           "torch.OutOfMemoryError: CUDA out of memory")
    assert root_cause(log) == "torch.OutOfMemoryError: CUDA out of memory"


def test_python_m_of_a_missing_package_names_the_module():
    log = ("$ /v/bin/python -m sglang.launch_server\n/v/bin/python: Error while finding module specification for "
           "'sglang.launch_server' (ModuleNotFoundError: No module named 'sglang')\n")
    assert root_cause(log) == "ModuleNotFoundError: No module named 'sglang'"


def test_a_log_without_an_exception_has_no_cause():
    assert root_cause("$ python server.py\nKilled\nINFO Error rate 0.1 is fine\n") is None
    assert root_cause("") is None


def test_a_huge_exception_message_is_cut():
    cause = root_cause("RuntimeError: " + "x" * 5000)
    assert cause is not None and len(cause) == 300 and cause.endswith("…")


def _rec(cell: str, check: str, status: str, reason: str) -> ResultRecord:
    return ResultRecord(run_id="r", cell=cell, runtime="sglang", device="cpu", model="m", offload="none",
                        check=check, status=status, reason=reason)


def test_failures_are_grouped_by_cause_with_each_cell_once_most_cells_first():
    crash = "boot-crash: ModuleNotFoundError: No module named 'sglang' (exit code 1)"
    records = [_rec(c, k, "error", crash) for c in ("a", "b", "c") for k in ("accuracy", "weight_parity")]
    records += [_rec("d", "accuracy", "fail", "wrong-answer: 3/12"), _rec("e", "accuracy", "pass", ""),
                _rec("f", "accuracy", "skipped", "no NPU device")]
    groups = group_failures(records)
    assert groups == [CauseGroup(crash, ("a", "b", "c")), CauseGroup("wrong-answer: 3/12", ("d",))]
    assert groups[0].count == 3


def test_records_as_plain_mappings_group_the_same():
    data = [{"cell": "a", "status": "error", "reason": "preflight: x"}, {"cell": "b", "status": "error", "reason": "preflight: x"}]
    assert group_failures(data) == [CauseGroup("preflight: x", ("a", "b"))]


def test_format_names_a_few_cells_and_counts_the_rest():
    cells = tuple(f"sglang-cpu-m{i}-none" for i in range(24))
    lines = format_groups([CauseGroup("boot-crash: X", cells), CauseGroup("parity: Y", ("hf-cpu-a-none",))])
    assert lines == ["24 cells: boot-crash: X — sglang-cpu-m0-none, sglang-cpu-m1-none, sglang-cpu-m2-none (+21)",
                     "1 cell: parity: Y — hf-cpu-a-none"]


def test_format_shows_at_most_a_few_causes_and_says_how_many_were_left_out():
    groups = [CauseGroup(f"cause {i}", (f"c{i}", f"d{i}")) for i in range(8)]
    lines = format_groups(groups, max_groups=5)
    assert len(lines) == 6 and lines[-1] == "… and 3 more cause(s) in 6 cell(s): see the report"
