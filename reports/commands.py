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
from harness.reports.builder import ReportInputs, ReportOutcome, render_run
from harness.reports.merge import merge_runs

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


def verdict_lines(outcome: ReportOutcome, limit: int = 20) -> list[str]:
    """The verdict as terminal lines: title and headline (with coverage), devices that did not run and
    why, then the blockers. ``harness report`` and the end of ``harness run`` print the same lines."""
    so = outcome.data.signoff
    lines = [f"Verdict: {so.title} — {outcome.headline}"]
    for count in so.coverage.axis("device"):
        if count.planned and not count.complete:
            why = "; ".join(f"{n} × {_clip(reason)}" for reason, n in count.skip_reasons[:2])
            lines.append(f"  not run on {count.value}: {count.planned - count.ran} of {count.planned} cells"
                         + (f" ({why})" if why else ""))
    for b in outcome.data.blockers[:limit]:
        f = b.finding
        where = f" {f.cell} {f.check}" if f.cell else ""
        lines.append(f"  {f.kind}{where}: {f.reason}")
    if len(outcome.data.blockers) > limit:
        lines.append(f"  ... and {len(outcome.data.blockers) - limit} more (see the report)")
    lines += [f"  warning: {w}" for w in outcome.data.warnings]
    return [outcome.redactor.text(line) for line in lines]


def _clip(text: str, width: int = 72) -> str:
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def exit_code(verdict: str) -> int:
    """0 on GO, 1 on NO-GO: what CI gates on."""
    return EXIT_GO if verdict == "GO" else EXIT_NO_GO


def _announce(outcome: ReportOutcome, out: TextIO) -> int:
    for line in verdict_lines(outcome):
        print(line, file=out)
    print(f"Summary: {outcome.summary}\nJUnit: {outcome.junit}", file=out)
    print(f"Report: {outcome.index}", file=out)
    return exit_code(outcome.verdict)
