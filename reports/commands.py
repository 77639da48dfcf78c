"""The `harness report` and `harness merge` commands: cli.py parses arguments, these do the work.

Exit codes (CI gates on them): 0 GO, 1 NO-GO, 2 the inputs are wrong (no such run directory,
a bad policy or waivers file); the last line printed is always ``Report: <path>`` on success.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from harness.errors import ConfigError
from reports.builder import ReportInputs, ReportOutcome, render_run
from reports.merge import merge_runs

EXIT_GO, EXIT_NO_GO, EXIT_USAGE = 0, 1, 2


def report_command(run_dir: Path, *, baseline: Path | None = None, policy: Path | None = None,
                   waivers: Path | None = None, history: Path | None = None, keep: int | None = None,
                   out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Render ``run_dir``'s report; print the verdict and the report path; return the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        inputs = ReportInputs.from_env(run_dir.resolve(), baseline=baseline, policy=policy, waivers=waivers,
                                       history=history, keep=keep)
        outcome = render_run(inputs)
    except ConfigError as exc:
        print(f"harness report: {exc}", file=err)
        return EXIT_USAGE
    return _announce(outcome, out)


def merge_command(out_dir: Path, shard_dirs: Sequence[Path], *, baseline: Path | None = None,
                  policy: Path | None = None, waivers: Path | None = None, history: Path | None = None,
                  keep: int | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Merge shard run directories into ``out_dir``, then report on it like ``report_command``."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        merged = merge_runs(out_dir, shard_dirs)
    except ConfigError as exc:
        print(f"harness merge: {exc}".replace("harness merge: harness merge:", "harness merge:"), file=err)
        return EXIT_USAGE
    print(f"Merged {len(shard_dirs)} shard(s) into {merged}", file=out)
    return report_command(merged, baseline=baseline, policy=policy, waivers=waivers, history=history, keep=keep,
                          out=out, err=err)


def _announce(outcome: ReportOutcome, out: TextIO) -> int:
    print(f"Verdict: {outcome.verdict}: {outcome.headline}", file=out)  # headline: counts only
    for b in outcome.data.blockers[:20]:
        f = b.finding
        where = f" {f.cell} {f.check}" if f.cell else ""
        print(outcome.redactor.text(f"  {f.kind}{where}: {f.reason}"), file=out)
    if len(outcome.data.blockers) > 20:
        print(f"  ... and {len(outcome.data.blockers) - 20} more (see the report)", file=out)
    print(f"Summary: {outcome.summary}\nJUnit: {outcome.junit}", file=out)
    print(f"Report: {outcome.index}", file=out)
    return EXIT_GO if outcome.verdict == "GO" else EXIT_NO_GO
