"""The `harness bisect` command line that answers "which release broke this?" for a report row.

    >>> cell_command("sglang-npu-m-none", "accuracy", "sglang", "0.5.9", "0.5.12")
    'harness bisect --cell sglang-npu-m-none --check accuracy --good sglang==0.5.9 --bad sglang==0.5.12'
    >>> cell_command("sglang-npu-m-none", "accuracy", "sglang", "0.5.12", "0.5.12")
    'harness bisect --cell sglang-npu-m-none --check accuracy --source DIR --good GOOD_COMMIT --bad BAD_COMMIT'

When the runtime's version did not change between the good run and the bad one (or is unknown),
the change is in a commit: the command bisects a checkout (``--source DIR``) instead.
"""
from __future__ import annotations

import shlex

from harness.bisect.refs import RUNTIME_DISTRIBUTIONS


def _refs(runtime: str, good: str | None, bad: str | None) -> list[str]:
    if good and bad and good != bad:
        dist = RUNTIME_DISTRIBUTIONS.get(runtime, runtime)
        return ["--good", f"{dist}=={good}", "--bad", f"{dist}=={bad}"]
    return ["--source", "DIR", "--good", "GOOD_COMMIT", "--bad", "BAD_COMMIT"]


def cell_command(cell: str, check: str, runtime: str, good: str | None, bad: str | None) -> str:
    """Bisect the releases (or commits) of ``runtime`` between a passing and a failing run of ``cell``'s ``check``."""
    return shlex.join(["harness", "bisect", "--cell", cell, "--check", check, *_refs(runtime, good, bad)])


def portability_command(key: str, runtime: str, good: str | None, bad: str | None) -> str:
    """Bisect the releases (or commits) of ``runtime`` for the one that brought the finding ``key``."""
    return shlex.join(["harness", "bisect", "--portability", key, *_refs(runtime, good, bad)])
