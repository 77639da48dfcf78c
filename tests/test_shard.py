"""Shards: every cell exactly once across shards, balanced by earlier durations."""
from __future__ import annotations

from harness.config.shard import assign


def test_longest_first_balances_known_durations():
    durations = {"a": 10.0, "b": 9.0, "c": 5.0, "d": 4.0, "e": 1.0}
    owner = assign(list(durations), durations, 2)
    loads = [sum(durations[c] for c, s in owner.items() if s == k) for k in (1, 2)]
    assert sorted(loads) == [14.0, 15.0]


def test_unknown_durations_balance_by_count_and_are_deterministic():
    cells = [f"c{i}" for i in range(10)]
    owner = assign(cells, {}, 4)
    counts = sorted(list(owner.values()).count(k) for k in range(1, 5))
    assert counts == [2, 2, 3, 3]
    assert owner == assign(list(reversed(cells)), {}, 4)


def test_shards_cover_every_cell_once_in_collection(matrix_suite):
    args = ["--collect-only", "-q", "--devices", "cpu,npu", "--models", "tiny-llama,tiny-qwen2-moe"]
    everything = {line for line in matrix_suite.runpytest(*args).outlines if "::" in line}
    seen: list[str] = []
    for i in range(1, 5):
        seen += [line for line in matrix_suite.runpytest(*args, "--shard", f"{i}/4").outlines if "::" in line]
    assert len(seen) == len(everything) and set(seen) == everything


def test_bad_shard_is_a_usage_error(matrix_suite):
    result = matrix_suite.runpytest("--collect-only", "--shard", "5/4")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--shard takes I/N with 1 <= I <= N, got '5/4'*"])
